"""Read template folders (.yaml/.yml/.json) into validated documents.

Every problem is collected, never just the first: JSON Schema errors for every file, then
the cross-reference checks over the whole set. Messages name the file and the path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from metacrm.metadata.messages import Message
from metacrm.metadata.problems import Problem, format_path
from metacrm.metadata.schema_messages import schema_message

SUFFIXES = (".yaml", ".yml", ".json")
# The top-level key of a document tells its kind, and the kind names its schema.
DOCUMENT_KINDS = {"object": "object", "picklists": "picklists", "template": "template",
                  "stage_process": "stage_process", "approval_flow": "approval_flow",
                  "roles": "roles", "settings": "settings"}

FLOW_KINDS = frozenset({"stage_process", "approval_flow"})


@cache
def schema_validator(kind: str) -> Draft202012Validator:
    text = resources.files("metacrm.metadata").joinpath(f"schemas/{kind}.schema.json").read_text(
        encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass(frozen=True)
class Document:
    """One validated file's content with the path it came from."""

    kind: str
    name: str
    source: str
    content: dict
    # A file with schema errors, kept to be cross-checked all the same: the items the
    # schema refused are left out (``content`` is what it accepted) and ``broken`` names
    # them, so that nothing is reported twice or as missing.
    partial: bool = False
    broken: frozenset[str] = frozenset()
    removed: dict[tuple, tuple[int, ...]] = field(default_factory=dict)  # list -> items left out
    dropped: frozenset[str] = frozenset()  # keys left out (``trigger``): their value unknown

    def original_path(self, path: Iterable[str | int]) -> list[str | int]:
        """A path into ``content`` as a path into the file (list items left out counted)."""
        return original_path(list(path), self.removed)

    def where(self, path: Iterable[str | int]) -> str:
        return format_path(self.original_path(path))


def original_path(path: list, removed: dict[tuple, tuple[int, ...]]) -> list:
    out: list = []
    for step in path:
        if isinstance(step, int):
            for gone in removed.get(tuple(out), ()):  # ascending
                if gone > step:
                    break
                step += 1
        out.append(step)
    return out


@dataclass
class TemplateSet:
    """All documents of one or more template folders."""

    documents: list[Document] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.documents if d.kind == kind]

    @property
    def manifest(self) -> Document | None:
        found = self.of_kind("template")
        return found[0] if found else None


def schema_problem(source: str, error: ValidationError) -> Problem:
    """A JSON Schema error as a problem of ``source``, in words a template author reads."""
    return Problem(f"schema.{error.validator}", source, format_path(error.absolute_path),
                   schema_message(error))


def parse_file(path: Path, display: str) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("file.unreadable", display, "(file)",
                              Message("%(detail)s", detail=str(exc)))]
    try:
        if path.suffix == ".json":
            return json.loads(text), []
        return yaml.safe_load(text), []
    except json.JSONDecodeError as exc:
        return None, [Problem("file.syntax", display, f"line {exc.lineno}",
                              Message("%(detail)s", detail=exc.msg))]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        detail = str(getattr(exc, "problem", exc))
        return None, [Problem("file.syntax", display, where, Message("%(detail)s", detail=detail))]


def classify(raw: Any, display: str) -> tuple[str | None, list[Problem]]:
    if not isinstance(raw, dict):
        return None, [Problem("file.not_mapping", display, "(root)",
                              Message("a definition file must hold a mapping"))]
    kinds = [k for k in DOCUMENT_KINDS if k in raw]
    if len(kinds) > 1 and set(kinds) & FLOW_KINDS:  # a flow names its object
        kinds.remove("object")
    if len(kinds) != 1:
        expected = ", ".join(DOCUMENT_KINDS)
        return None, [Problem("file.kind", display, "(root)",
                              Message("expected exactly one of the top-level keys: %(keys)s",
                                      keys=expected))]
    return kinds[0], []


def load_document(path: Path, display: str) -> tuple[Document | None, list[Problem]]:
    raw, problems = parse_file(path, display)
    if problems:
        return None, problems
    kind, problems = classify(raw, display)
    if kind is None:
        return None, problems
    errors = sorted(schema_validator(DOCUMENT_KINDS[kind]).iter_errors(raw),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        return accepted_part(kind, display, raw), [schema_problem(display, e) for e in errors]
    name = raw[kind] if isinstance(raw[kind], str) else kind
    return Document(kind, name, display, raw), []


# Kinds cross-checked despite errors.
LENIENT_KINDS = frozenset({"object", "picklists", "stage_process", "approval_flow"})
MAX_PRUNES = 500


def accepted_part(kind: str, display: str, raw: dict) -> Document | None:
    """What the schema accepts of a broken file: each refused list item (a field, an
    option, a section…) or key is left out until the rest validates; None when the
    refusal is the document itself (a missing ``object`` or ``fields``)."""
    if kind not in LENIENT_KINDS:
        return None
    content = copy.deepcopy(raw)
    broken: set[str] = set()
    removed: dict[tuple, tuple[int, ...]] = {}
    dropped: set[str] = set()
    validator = schema_validator(DOCUMENT_KINDS[kind])
    for _ in range(MAX_PRUNES):
        error = next(iter(validator.iter_errors(content)), None)
        if error is None:
            name = content[kind] if isinstance(content[kind], str) else kind
            return Document(kind, name, display, content, partial=True,
                            broken=frozenset(broken), removed=removed,
                            dropped=frozenset(dropped))
        path = list(error.absolute_path)
        if not path:
            return None
        _prune(content, path, broken, removed, dropped)
    return None


def _prune(content: Any, path: list, broken: set[str],
           removed: dict[tuple, tuple[int, ...]], dropped: set[str]) -> None:
    """Leave out the innermost list item on ``path``, else its last key."""
    cut = max((i for i, p in enumerate(path) if isinstance(p, int)), default=len(path) - 1)
    parent = content
    for step in path[:cut]:
        parent = parent[step]
    item = parent[path[cut]]
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        broken.add(item["name"])
    if isinstance(path[cut], int):
        where = original_path(path[:cut + 1], removed)
        key = tuple(where[:-1])
        removed[key] = tuple(sorted((*removed.get(key, ()), where[-1])))
    else:
        dropped.add(format_path(original_path(path[:cut + 1], removed)))
    del parent[path[cut]]


def iter_files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            yield path


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
