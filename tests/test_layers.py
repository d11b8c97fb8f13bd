"""Imports point down only: ui → engine → metadata; metadata knows no SQL or Flask."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "metacrm"
FORBIDDEN = {
    "metadata": ("metacrm.engine", "metacrm.ui", "sqlalchemy", "flask", "alembic"),
    "engine": ("metacrm.ui", "flask"),
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down(layer):
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imports_of(path)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert offenders == []


def test_engine_and_ui_name_no_specific_object():
    words = ("customer", "opportunity", "contact")
    offenders = [
        f"{path.relative_to(PACKAGE)}: {word}"
        for layer in ("engine", "ui")
        for pattern in ("*.py", "*.html", "*.js")
        for path in (PACKAGE / layer).rglob(pattern)
        for word in words
        if word in path.read_text(encoding="utf-8").lower()
    ]
    assert offenders == []


def test_no_eval_or_exec_in_the_package():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id in ("eval", "exec")
    ]
    assert offenders == []
