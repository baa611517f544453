"""The import rules of ARCHITECTURE.md, read from the source: every import, lazy ones too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "maaskit"

FOUNDATION = "foundation"
CORE = {FOUNDATION, "onnxmodel", "registry", "serving", "batch", "training"}
MAY_IMPORT: dict[str, set[str]] = {
    FOUNDATION: set(),
    "onnxmodel": {FOUNDATION},
    "registry": {FOUNDATION, "onnxmodel"},
    "serving": {FOUNDATION, "onnxmodel", "registry"},
    "batch": {FOUNDATION, "onnxmodel", "registry", "serving"},
    "training": {FOUNDATION, "onnxmodel", "registry", "serving"},
    "components": CORE,  # the composition root: builds the core's objects for the functions
    "sdk": CORE,
    "local": {FOUNDATION},
    "cli": CORE | {"sdk", "local"},
}


def package_of(module: str) -> str:
    """``maaskit.serving.runtime`` -> ``serving``; top-level modules are the foundation, but
    for the composition root, which sits above the core."""
    parts = module.split(".")
    if len(parts) >= 2 and ((SRC / parts[1]).is_dir() or parts[1] == "components"):
        return parts[1]
    return FOUNDATION


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "maaskit":  # ``from maaskit import cli`` names a package
                for alias in node.names:
                    yield node.lineno, f"maaskit.{alias.name}"


def maaskit_imports(path: Path) -> Iterator[tuple[int, str]]:
    for line, module in imported_modules(path):
        if module == "maaskit" or module.startswith("maaskit."):
            yield line, module


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")


def violations(path: Path, owner: str, allowed: set[str]) -> list[str]:
    found = []
    for line, module in maaskit_imports(path):
        target = package_of(module)
        if target != owner and target not in allowed:
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(f"{where}:{line} ({owner}) imports {module} ({target})")
    return found


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages | {FOUNDATION, "components"} == set(MAY_IMPORT)


def test_packages_import_only_what_architecture_allows() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        owner = package_of(module_name(path))
        found += violations(path, owner, MAY_IMPORT[owner])
    assert not found, "\n".join(found)


def test_handlers_import_only_the_core() -> None:
    found = []
    for path in sorted((ROOT / "functions").rglob("*.py")):
        found += violations(path, "functions", CORE | {"components"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "owner", "allowed", "expected"),
    [
        (
            "from maaskit.sdk.client import Client\n",
            "serving",
            MAY_IMPORT["serving"],
            "maaskit.sdk",
        ),
        (
            "def f():\n    from maaskit.cli import main\n",
            "batch",
            MAY_IMPORT["batch"],
            "maaskit.cli",
        ),
        ("import maaskit.local.stack\n", "functions", CORE, "maaskit.local.stack"),
        ("from maaskit import cli\n", "training", MAY_IMPORT["training"], "maaskit.cli"),
        ("from maaskit import telemetry\n", "local", MAY_IMPORT["local"], None),
    ],
)
def test_a_forbidden_import_is_caught(
    tmp_path: Path, source: str, owner: str, allowed: set[str], expected: str | None
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    found = violations(probe, owner, allowed)
    if expected is None:
        assert found == []
    else:
        assert found
        assert f"imports {expected}" in found[0]
