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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:`` (not run, so no loop)."""
    return {inner.lineno for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING"
            for inner in ast.walk(node) if isinstance(inner, ast.Import | ast.ImportFrom)}


def package_imports() -> dict[str, set[str]]:
    """Each package module → the package modules it imports, at the top or inside a
    function alike (an import inside a function is still a dependency)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                             else node.module for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
        graph[name] = found - {name}
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down(layer):
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imports_of(path)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert offenders == []


def test_no_module_imports_one_that_imports_it_back():
    assert loops(package_imports()) == []


# The engine's areas, each above the ones it may import (the engine's own top-level modules
# are either the base every area shares or the wiring that composes areas).
AREAS = {
    "schema": set(),
    "access": {"schema"},
    "writing": {"access", "schema"},
    "reading": {"access", "schema"},
    "flows": {"writing", "reading", "access", "schema"},
    "jobs": {"flows", "writing", "reading", "access", "schema"},
}
BASE = {"actor", "errors", "db", "sqltypes", "systables", "audit"}
WIRING = {"instance", "customise", "demo", "demo_values", "demo_stages", "write_hooks",
          "job_catalogue", "upgrades"}


def test_every_engine_module_is_in_an_area_the_base_or_the_wiring():
    top = {p.stem for p in (PACKAGE / "engine").glob("*.py")} - {"__init__"}
    folders = {p.name for p in (PACKAGE / "engine").iterdir() if p.is_dir()
               and (p / "__init__.py").exists()}
    assert top == BASE | WIRING and folders == set(AREAS)


def area_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["metacrm", "engine"] else None


def test_engine_areas_import_only_the_areas_below_them():
    graph = package_imports()
    offenders = []
    for module, imported in sorted(graph.items()):
        area = area_of(module)
        if area is None:
            continue
        for name in sorted(imported):
            other = area_of(name)
            top = name.split(".")[2] if name.startswith("metacrm.engine.") else None
            if (other and other != area and other not in AREAS[area]) or (
                    other is None and top in WIRING):
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_the_loop_finder_finds_a_loop():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_ui_never_acts_as_the_system():
    """Elevated work is the engine's, which names the system actor where it needs it."""
    offenders = [str(path.relative_to(PACKAGE)) for path in sorted((PACKAGE / "ui").rglob("*.py"))
                 if "SYSTEM" in path.read_text(encoding="utf-8")]
    assert offenders == []


# The one place in the UI that touches SQLAlchemy: the request's session (and its engine).
UI_SESSION_SETUP = {"runtime.py"}


def run_time_imports(path: Path) -> set[str]:
    """Modules a file imports when it runs: those under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_ui_builds_no_sql():
    """Queries are the engine's; the UI parses the request, calls the engine and renders."""
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "ui").rglob("*.py"))
        if path.name not in UI_SESSION_SETUP
        for name in sorted(run_time_imports(path))
        if name == "sqlalchemy" or name.startswith("sqlalchemy.")
    ]
    assert offenders == []


def test_the_sql_check_lets_type_hints_through(tmp_path):
    hinted = tmp_path / "hinted.py"
    hinted.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from sqlalchemy.orm import Session\n", encoding="utf-8")
    querying = tmp_path / "querying.py"
    querying.write_text("from sqlalchemy import select\n", encoding="utf-8")
    assert run_time_imports(hinted) == {"typing"}
    assert run_time_imports(querying) == {"sqlalchemy"}


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


# Where the engine may name a language: where a user's chosen language is stored, and the
# export, which writes a file in the language the caller (the UI) chose: a spreadsheet
# cannot be worded later, so its words are picked when it is written.
LANGUAGE_ALLOWED = {"engine/access/users.py", "engine/access/org.py",
                    "engine/access/admin.py", "engine/reading/export.py"}


def language_choices(tree: ast.AST) -> list[int]:
    """Lines that pick a language: ``.zh``/``.en``, ``.get("zh")``, ``language=``, or a
    ``language`` parameter."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("zh", "en"):
            found.append(node.lineno)
        elif isinstance(node, ast.Call):
            if getattr(node.func, "attr", None) == "get" and any(
                    isinstance(a, ast.Constant) and a.value in ("zh", "en") for a in node.args):
                found.append(node.lineno)
            if any(k.arg == "language" for k in node.keywords):
                found.append(node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            if any(a.arg == "language" for a in arguments):
                found.append(node.lineno)
    return found


def test_the_engine_embeds_no_language():
    chosen = []
    for path in sorted((PACKAGE / "engine").rglob("*.py")):
        where = str(path.relative_to(PACKAGE).as_posix())
        if where not in LANGUAGE_ALLOWED:
            chosen += [f"{where}:{line}" for line in language_choices(
                ast.parse(path.read_text(encoding="utf-8")))]
    assert chosen == []


def test_the_language_finder_finds_a_choice():
    code = "def f(x, language): return x.label.zh or x.get('en') or g(language='zh')"
    assert len(language_choices(ast.parse(code))) == 4
