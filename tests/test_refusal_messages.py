"""Every refusal a user can meet is worded in Chinese too: each ``Message``/``InvalidValue``
template in the package (metadata problems included) has a translation with the same
placeholders, and no problem or refusal (the API's hand-written errors included) is built
from a bare English string."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.pofile import read_po

from metacrm.metadata.loader import load_document
from metacrm.metadata.messages import Message

PACKAGE = Path(__file__).resolve().parent.parent / "metacrm"
CATALOGUE = PACKAGE / "ui/translations/zh/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)")
# Calls that take a message for a person, and where: (positional index, keyword).
MESSAGE_ARGUMENTS = {"Problem": (3, "message"), "problem": (2, "message"),
                     "EditRefused": (1, "message"), "ExpressionError": (0, "message"),
                     "fail": (0, "message"), "Refused": (None, "reason"),
                     "ApiError": (2, "message"), "error_response": (2, "message")}


def calls() -> list[tuple[str, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                found.append((f"{where}:{node.lineno}", node))
    return found


def called(node: ast.Call) -> str | None:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", None)


def templates() -> dict[str, str]:
    """Each template written in the package → one place it is written."""
    found: dict[str, str] = {}
    for where, node in calls():
        if called(node) in ("Message", "InvalidValue") and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.setdefault(node.args[0].value, where)
    return found


def test_the_walk_finds_the_metadata_problems():
    found = templates()
    assert "'%(name)s' is an SQL reserved word" in found  # a name rule
    assert "%(value)s does not match %(pattern)s" in found  # a JSON Schema error
    assert "a %(type)s field needs '%(key)s'" in found  # a cross-check
    assert "there is no option '%(value)s'" in found  # an edit refused
    assert len(found) > 250


def test_every_refusal_has_a_chinese_translation_with_the_same_placeholders():
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    wrong = []
    for template, where in sorted(templates().items()):
        entry = catalogue.get(template)
        if entry is None or not entry.string or not str(entry.string).strip():
            wrong.append(f"{where}: no translation for {template!r}")
        elif sorted(PLACEHOLDER.findall(template)) != sorted(
                PLACEHOLDER.findall(str(entry.string))):
            wrong.append(f"{where}: placeholders differ in {entry.string!r}")
    assert wrong == []


def test_no_problem_or_refusal_is_a_bare_english_string():
    bare = []
    for where, node in calls():
        spec = MESSAGE_ARGUMENTS.get(called(node) or "")
        if spec is None:
            continue
        index, keyword = spec
        args = [node.args[index]] if index is not None and len(node.args) > index else []
        args += [k.value for k in node.keywords if k.arg == keyword]
        bare += [where for a in args if isinstance(a, ast.JoinedStr) or (
            isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value)]
    assert bare == []


def test_a_schema_error_keeps_jsonschemas_english_and_its_parts(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("object: a\nlabel: {zh: 甲, en: A}\ntitle_field: Name\n"
                    "fields: [{name: Name, type: text, label: {zh: 名, en: Name}}]\n",
                    encoding="utf-8")
    _, problems = load_document(path, "a.yaml")
    message = next(p.message for p in problems if p.path == "fields[0].name")
    assert isinstance(message, Message)
    assert message == "'Name' does not match '^[a-z][a-z0-9_]{0,62}$'"
    assert message.template == "%(value)s does not match %(pattern)s"
    assert message.params["value"] == "'Name'"
