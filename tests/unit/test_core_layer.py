"""The CoreLayer ships the core and nothing else: built with the target `sam build` runs."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from maaskit.local import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
NEVER_IN_LAYER = ("maaskit/sdk", "maaskit/cli", "maaskit/local")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None:
        pytest.fail("make is needed to build the core layer (as sam build does)")
    artifacts = tmp_path_factory.mktemp("core-layer")
    subprocess.run(
        ["make", "-s", "-C", str(SRC), "build-CoreLayer", f"ARTIFACTS_DIR={artifacts}"],
        check=True,
    )
    return artifacts / "python"


def shipped(layer: Path) -> set[str]:
    return {p.relative_to(layer).as_posix() for p in layer.rglob("*") if p.is_file()}


def module_file(module: str, root: Path) -> str | None:
    """The file ``module`` is imported from, relative to ``root``, if it is there."""
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate.as_posix()
    return None


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "maaskit" or name.startswith("maaskit.")}


def needed_by_functions() -> set[str]:
    """Every maaskit file a handler can import, lazily or not, followed through the core."""
    needed: set[str] = set()
    pending = set().union(*(imports_of(p) for p in (ROOT / "functions").rglob("*.py")))
    while pending:
        module = pending.pop()
        file = module_file(module, SRC)
        if file is None or file in needed:
            continue  # a name imported from a module, not a module
        needed.add(file)
        parts = module.split(".")
        pending |= {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages
        pending |= imports_of(SRC / file)
    return needed


def test_the_template_builds_the_core_layer_with_this_makefile() -> None:
    layer = cfn_yaml.load(ROOT / "template.yaml")["Resources"]["CoreLayer"]
    assert layer["Properties"]["ContentUri"] == "src"
    assert layer["Metadata"]["BuildMethod"] == "makefile"


def test_the_layer_holds_no_sdk_cli_or_local_stack(layer: Path) -> None:
    files = shipped(layer)
    assert not [f for f in files if f.startswith(NEVER_IN_LAYER)]
    assert not [f for f in files if "__pycache__" in f]


def test_the_layer_holds_everything_a_handler_imports(layer: Path) -> None:
    needed = needed_by_functions()
    assert "maaskit/serving/runtime.py" in needed  # the walk follows the core, lazily too
    assert "maaskit/training/workflow.py" in needed
    assert sorted(needed - shipped(layer)) == []


def test_the_layer_is_small(layer: Path) -> None:
    size = sum((layer / f).stat().st_size for f in shipped(layer))
    everything = sum(p.stat().st_size for p in (SRC / "maaskit").rglob("*.py"))
    assert size < everything  # what is left out is real code, not only caches
    print(f"core layer: {size / 1e3:.0f} kB of {everything / 1e3:.0f} kB of sources")
