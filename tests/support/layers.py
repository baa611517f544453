"""The Lambda layers' package lists, a layer installed for this interpreter, and its smoke run.

``python -m tests.support.layers PYTHON LAYER CORE [--training]`` runs the same smoke check
on a layer ``sam build`` produced (``.ci/run`` does, with python3.12 on the built folders).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ROOT / "layers"
SMOKE = Path(__file__).with_name("layer_smoke.py")
# What the Lambda Python runtime itself provides beside the layers: boto3 and its dependencies.
LAMBDA_PROVIDES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
NOT_SHIPPED = re.compile(r"^#\s*not shipped:\s*([A-Za-z0-9._-]+)\s*\((.+)\)\s*$")


def canonical(name: str) -> str:
    """A distribution name as pip compares them: ``ml_dtypes`` and ``ML-DTypes`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(layer: str) -> Path:
    return LAYERS / layer / "requirements.txt"


def pins(path: Path) -> dict[str, str]:
    """``name == version`` of every requirement line, by canonical name; refuses a loose one."""
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned (name==version)"
            found[canonical(name.strip())] = version.strip()
    return found


def comments(path: Path) -> dict[str, str]:
    """The comment of every requirement line, by canonical name (empty when there is none)."""
    found = {}
    for raw in path.read_text().splitlines():
        line, _, comment = raw.partition("#")
        if line.strip():
            found[canonical(line.split("==")[0].strip())] = comment.strip()
    return found


def not_shipped(path: Path) -> dict[str, str]:
    """``# not shipped: name (who declares it: why we do without)`` lines, by canonical name."""
    found = {}
    for raw in path.read_text().splitlines():
        match = NOT_SHIPPED.match(raw.strip())
        if match:
            found[canonical(match[1])] = match[2]
    return found


def link_distribution(distribution: importlib.metadata.Distribution, target: Path) -> None:
    """``distribution``'s files in ``target``, hard-linked where it can be, else copied."""
    for file in distribution.files or []:
        if file.parts[0] == ".." or "__pycache__" in file.parts:
            continue  # console scripts outside site-packages; bytecode of this interpreter
        destination = target / file
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = Path(str(distribution.locate_file(file)))
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)


def install(path: Path, target: Path) -> None:
    """The pinned packages of ``path`` in ``target``, each without its dependencies, for this
    interpreter: linked or copied from this environment where it has the pinned version (no
    network), else installed by ``pip install --no-deps`` from the package index, as CI can."""
    missing = []
    for name, version in pins(path).items():
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            distribution = None
        if distribution is None or distribution.version != version:
            missing.append(f"{name}=={version}")
        else:
            link_distribution(distribution, target)
    if missing:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"),
                *("--only-binary=:all:", "--target", str(target), *missing),
            ],
            check=True,
        )


def lambda_runtime(target: Path) -> None:
    """What the Lambda runtime provides (boto3 and its dependencies, pure Python), from this
    environment, in ``target``."""
    for name in LAMBDA_PROVIDES:
        link_distribution(importlib.metadata.distribution(name), target)


def shipped(target: Path) -> dict[str, importlib.metadata.Distribution]:
    """The distributions installed in ``target``, by canonical name."""
    return {
        canonical(d.metadata["Name"]): d
        for d in importlib.metadata.distributions(path=[str(target)])
    }


def declared_dependencies(distribution: importlib.metadata.Distribution) -> set[str]:
    """What ``distribution`` requires on Lambda's Linux CPython 3.12, extras left out."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    environment = {key: str(value) for key, value in default_environment().items()} | {
        "python_version": "3.12",
        "python_full_version": "3.12.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "os_name": "posix",
        "extra": "",
    }
    needed = set()
    for line in distribution.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            needed.add(canonical(requirement.name))
    return needed


def smoke_inputs(folder: Path) -> dict[str, Any]:
    """The model and tokenizer the smoke run loads, written to ``folder``; what it must get."""
    from tests.support.models import linear
    from tests.support.text import tokenizer_json

    model, weights, bias = linear(n_in=4, n_out=3)
    (folder / "linear.onnx").write_bytes(model)
    tokenizer = tokenizer_json()
    (folder / "tokenizer.json").write_text(tokenizer)
    from tokenizers import Tokenizer

    rows = np.arange(8, dtype=np.float32).reshape(2, 4)
    return {
        "inference": rows @ weights + bias,
        "token_ids": Tokenizer.from_str(tokenizer).encode("hello good movie").ids,
    }


def smoke(python: str, layer: Path, core: Path, *, training: bool) -> dict[str, Any]:
    """Run the smoke script in a fresh ``python`` on ``layer`` and ``core`` alone, and check
    its report: every result right, every loaded module from the layer, the core or the
    standard library, or what the Lambda runtime provides. Returns the report."""
    with tempfile.TemporaryDirectory(prefix="layer-smoke-") as scratch:
        inputs = Path(scratch) / "inputs"
        runtime = Path(scratch) / "runtime"
        inputs.mkdir()
        expected = smoke_inputs(inputs)
        lambda_runtime(runtime)
        command = [python, "-I", "-S", "-B", str(SMOKE), str(layer.resolve()), str(core.resolve())]
        command.append(str(runtime))
        command.append(str(inputs))
        done = subprocess.run(
            command + (["--training"] if training else []),
            capture_output=True,
            text=True,
            env={
                k: v
                for k, v in os.environ.items()
                if k in ("PATH", "HOME") or k.startswith("PYENV")
            },
            cwd=scratch,
            check=False,
        )
    assert done.returncode == 0, f"the layer alone failed:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    np.testing.assert_allclose(report["inference"], expected["inference"], rtol=1e-5)
    assert report["token_ids"] == expected["token_ids"]
    assert report["simdjson_rows"] == [[1.5, 2.0], [3.0, 4.25]]
    if training:
        np.testing.assert_allclose(report["onnx_composed"], 2 * expected["inference"], rtol=1e-5)
    strays = {
        n: o
        for n, o in report["origins"].items()
        if o not in ("layer", "core", "runtime", "stdlib")
    }
    assert strays == {}, f"modules loaded from outside the layer and the core: {strays}"
    assert report["core_modules"] > 50, "the core folder holds no maaskit core"
    assert report["origins"]["maaskit"] == "core"
    loaded = {n for n, o in report["origins"].items() if o == "layer"}
    assert {"numpy", "onnxruntime", "tokenizers", "simdjson", "orjson", "msgspec"} <= loaded
    return report


# What layers/Makefile removes from a built layer: never read at run time.
PRUNED = (
    "simdjson/*.cpp",
    "simdjson/*.h",
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
)


def left_unpruned(layer: Path) -> list[str]:
    """What a layer ``sam build`` made still holds of what its Makefile removes."""
    return sorted(
        str(path.relative_to(layer)) for pattern in PRUNED for path in layer.glob(pattern)
    )


def main(argv: list[str]) -> None:
    python, layer, core = argv[:3]
    leftovers = left_unpruned(Path(layer))
    assert not leftovers, f"{layer}: the Makefile should have removed {leftovers}"
    report = smoke(python, Path(layer), Path(core), training="--training" in argv[3:])
    loaded = sorted(n for n, o in report["origins"].items() if o == "layer")
    print(
        f"{layer}: alone on Python {report['python']}, {report['core_modules']} core modules "
        f"imported, inference, tokenizer and simdjson right; loaded from it: {', '.join(loaded)}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
