"""The Lambda layers: what each function gets, and pins that must agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maaskit.local import cfn_yaml
from tests.support import layers
from tests.support.layers import canonical, comments, not_shipped, requirements

ROOT = Path(__file__).resolve().parents[2]
# What maaskit itself imports from each layer; everything else in a layer is there because one
# of these declares it and our paths reach it.
IMPORTED = {
    "runtime": {"numpy", "onnxruntime", "orjson", "pysimdjson", "msgspec", "tokenizers"},
    "training": {"numpy", "onnxruntime", "orjson", "pysimdjson", "msgspec", "tokenizers", "onnx"},
}
LAYER_IDS = {"runtime": "RuntimeLayer", "training": "TrainingLayer"}


_pins = layers.pins


def test_the_training_layer_is_the_runtime_layer_plus_onnx_with_the_same_pins() -> None:
    runtime = _pins(requirements("runtime"))
    training = _pins(requirements("training"))
    assert {name: training.get(name) for name in runtime} == runtime
    # onnx, and the three packages onnx imports that the runtime layer does without
    assert set(training) - set(runtime) == {"onnx", "protobuf", "ml-dtypes", "typing-extensions"}
    # and what the runtime layer leaves out, the training layer leaves out too, but protobuf
    left_out = set(not_shipped(requirements("runtime")))
    assert set(not_shipped(requirements("training"))) == left_out - {"protobuf"}


@pytest.mark.parametrize("layer", ["runtime", "training"])
def test_every_pin_says_who_needs_it_and_every_left_out_package_why(layer: str) -> None:
    path = requirements(layer)
    assert [name for name, comment in comments(path).items() if len(comment) < 10] == []
    assert set(not_shipped(path)).isdisjoint(_pins(path))
    assert all(":" in reason for reason in not_shipped(path).values())


@pytest.mark.parametrize("layer", ["runtime", "training"])
def test_the_template_installs_each_layer_without_dependencies_for_its_architecture(
    layer: str,
) -> None:
    # Given the layer's resource in the template
    resource = cfn_yaml.load(ROOT / "template.yaml")["Resources"][LAYER_IDS[layer]]
    # Then layers/Makefile builds it (pip --no-deps), for the Architecture parameter's machine
    assert resource["Properties"]["ContentUri"] == "layers"
    assert resource["Metadata"]["BuildMethod"] == "makefile"
    assert resource["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    assert resource["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    makefile = (ROOT / "layers" / "Makefile").read_text()
    assert f"build-{LAYER_IDS[layer]}:" in makefile
    assert "--no-deps" in makefile


@pytest.fixture(scope="module", params=["runtime", "training"])
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A layer's pinned list installed alone for this interpreter (see layers.install).

    Linked from this environment where it holds the pinned version, so without the network;
    the training layer's ml-dtypes is not (a dev dependency keeps this environment's at
    0.5.4 or older), so pip fetches it from the package index once, then from its cache. CI
    installs everything from that index anyway."""
    layer: str = request.param
    target = tmp_path_factory.mktemp(f"{layer}-layer")
    layers.install(requirements(layer), target)
    return layer, target


@pytest.mark.slow
def test_each_layer_holds_what_its_packages_declare_but_what_it_leaves_out_on_purpose(
    installed: tuple[str, Path],
) -> None:
    # Given a layer installed from its list, without dependencies
    layer, target = installed
    path = requirements(layer)
    shipped = layers.shipped(target)
    # Then it holds exactly the pinned versions
    assert {name: d.version for name, d in shipped.items()} == _pins(path)
    # And every dependency they declare is shipped too, or named as left out on purpose
    declared = set().union(*(layers.declared_dependencies(d) for d in shipped.values()))
    assert sorted(declared - set(shipped) - set(not_shipped(path))) == []
    # And every package shipped is imported by maaskit or declared by one that is shipped
    assert IMPORTED[layer] <= set(shipped)
    assert sorted(set(shipped) - IMPORTED[layer] - declared) == []
    # And what is left out is really declared (else its line says nothing) and really absent
    assert sorted(set(not_shipped(path)) - declared) == []
    assert not (target / "huggingface_hub").exists()
    assert (target / "google").exists() == (layer == "training")


@pytest.mark.slow
def test_each_layer_alone_imports_the_core_and_runs_a_model_a_tokenizer_and_simdjson(
    installed: tuple[str, Path],
) -> None:
    # Given a layer installed from its list, without dependencies
    layer, target = installed
    # When a fresh interpreter with only the layer and the core on its path runs what the
    # handlers run
    report = layers.smoke(sys.executable, target, ROOT / "src", training=layer == "training")
    # Then every core module imports and every result is right, with nothing from elsewhere
    assert report["core_modules"] > 50
    assert "huggingface_hub" not in report["origins"]
    assert ("onnx" in report["origins"]) == (layer == "training")


def test_the_runtime_layer_pins_what_the_runtime_extra_asks_for() -> None:
    # Given the package's runtime extra and the layer that ships it to Lambda
    import tomllib

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["runtime"]
    pins = _pins(requirements("runtime"))
    # Then every package of the extra is pinned, at a version the extra allows
    for line in extra:
        requirement = Requirement(line)
        name = canonical(requirement.name)
        assert name in pins, f"{name} is in the runtime extra but not in the runtime layer"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


def test_the_runtime_layer_pins_the_core_dependencies_lambda_does_not_provide() -> None:
    # Given the package's own dependencies (the Lambda runtime provides boto3 alone)
    import tomllib

    from packaging.requirements import Requirement

    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins(requirements("runtime"))
    # Then each of the others reaches every function through the runtime layer
    for line in core:
        requirement = Requirement(line)
        name = canonical(requirement.name)
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
