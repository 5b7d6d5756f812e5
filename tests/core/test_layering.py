"""The core sits below the services that wrap it: it imports none of them (what it needs of
them are protocols in ``dockyard.core.seams``)."""

from __future__ import annotations

import ast
from pathlib import Path

import dockyard.core

ABOVE_THE_CORE = ("api", "hub", "lifecycle", "ui")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.add(node.module)
    return names


def test_the_core_imports_nothing_above_it() -> None:
    root = Path(dockyard.core.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert modules
    above = {f"dockyard.{package}" for package in ABOVE_THE_CORE}
    found = {
        f"{path.relative_to(root)}: {name}"
        for path in modules
        for name in _imported(path)
        if any(name == package or name.startswith(f"{package}.") for package in above)
    }
    assert not found
