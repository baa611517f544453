"""The Lambda layers: what each function gets, and pins that must agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from maaskit.local import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned"
            pins[name.lower()] = version
    return pins


def test_the_training_layer_is_the_runtime_layer_plus_onnx_with_the_same_pins() -> None:
    runtime = _pins(ROOT / "layers" / "runtime" / "requirements.txt")
    training = _pins(ROOT / "layers" / "training" / "requirements.txt")
    assert {name: training.get(name) for name in runtime} == runtime
    assert set(training) - set(runtime) == {"onnx"}


def test_the_runtime_layer_pins_what_the_runtime_extra_asks_for() -> None:
    # Given the package's runtime extra and the layer that ships it to Lambda
    import tomllib

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["runtime"]
    pins = _pins(ROOT / "layers" / "runtime" / "requirements.txt")
    # Then every package of the extra is pinned, at a version the extra allows
    for line in extra:
        requirement = Requirement(line)
        name = requirement.name.lower()
        assert name in pins, f"{name} is in the runtime extra but not in the runtime layer"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


def test_the_runtime_layer_pins_the_core_dependencies_lambda_does_not_provide() -> None:
    # Given the package's own dependencies (the Lambda runtime provides boto3 alone)
    import tomllib

    from packaging.requirements import Requirement

    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins(ROOT / "layers" / "runtime" / "requirements.txt")
    # Then each of the others reaches every function through the runtime layer
    for line in core:
        requirement = Requirement(line)
        name = requirement.name.lower()
        if name == "boto3":
            continue
        assert name in pins, f"{name} is a core dependency but not in the runtime layer"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


def _training_functions() -> dict[str, dict[str, Any]]:
    resources = cfn_yaml.load(ROOT / "template.yaml")["Resources"]
    substitutions = resources["TrainingStateMachine"]["Properties"]["DefinitionSubstitutions"]
    ids = {value["Fn::GetAtt"][0] for value in substitutions.values()}
    return {logical_id: resources[logical_id]["Properties"] for logical_id in ids}


def _layer_names(properties: dict[str, Any]) -> set[str]:
    return {layer["Ref"] for layer in properties["Layers"]}


def test_only_the_export_step_gets_the_training_layer_though_all_share_one_folder() -> None:
    # Given the training functions, which all run functions/training/app.py
    functions = _training_functions()
    # Then Export alone has onnx (the training layer, with the runtime's packages in it)
    assert _layer_names(functions.pop("TrainExportFunction")) == {"TrainingLayer", "CoreLayer"}
    # And every other step has the runtime layer and the core, and no onnx
    for logical_id, properties in functions.items():
        assert _layer_names(properties) == {"RuntimeLayer", "CoreLayer"}, logical_id


def test_the_training_folder_asks_pip_for_powertools_alone_at_the_functions_version() -> None:
    # Given the one requirements file sam build installs for every training function
    pins = _pins(ROOT / "functions" / "training" / "requirements.txt")
    api = _pins(ROOT / "functions" / "api" / "requirements.txt")
    # Then it is Powertools alone (the layers bring the rest), at the API function's version
    assert pins == {"aws-lambda-powertools": api["aws-lambda-powertools[tracer]"]}


def test_importing_the_training_module_loads_neither_onnx_nor_onnxruntime() -> None:
    # Given a fresh interpreter importing the training functions' module, as a cold start does
    code = (
        "import sys\n"
        "sys.path.insert(0, 'functions/training')\n"
        "import app\n"
        "heavy = ('onnx', 'onnxruntime', 'tokenizers', 'maaskit.batch.service')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(sorted(n for n in vars(app.core) if not n.startswith('_')))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "src"),
        "MAASKIT_BUCKET": "maaskit-test-bucket",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    imported, built = out.stdout.splitlines()
    # Then none of the heavy packages was imported, and nothing but the settings was built
    assert imported == "[]"
    assert built == "['settings']"
