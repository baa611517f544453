"""The Lambda layers: what each function gets, and pins that must agree."""

from __future__ import annotations

from pathlib import Path

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
