"""A template folder as the engine installs it: loaded, validated and cross-checked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from metacrm.metadata.checks import check_template_set
from metacrm.metadata.loader import TemplateSet, display_path, iter_files, load_document
from metacrm.metadata.messages import Message
from metacrm.metadata.problems import DefinitionError, Problem
from metacrm.metadata.settings import SettingDef


def load_paths(paths: Iterable[Path | str], *, known_objects: Iterable[str] = (),
               known_roles: Iterable[str] | None = (),
               installed: Mapping[str, Any] | None = None,
               installed_settings: Mapping[str, SettingDef] | None = None) -> TemplateSet:
    """Load, validate and cross-check; raise DefinitionError with every problem.

    ``known_objects``: installed objects the files may name; ``installed``: their
    definitions, so flows on them are checked field by field; ``known_roles``: roles that
    exist besides the built-in ones and those the files declare; ``installed_settings``:
    business settings the files' expressions may read besides their own."""
    problems: list[Problem] = []
    result = TemplateSet()
    folders = [Path(p) for p in paths]
    for path in folders:
        if not path.exists():
            problems.append(Problem("file.missing", str(path), "(file)",
                                    Message("no such file or folder")))
    known = set(known_objects)
    for path in iter_files(p for p in folders if p.exists()):
        doc, found = load_document(path, display_path(path))
        problems.extend(found)
        if doc:
            result.documents.append(doc)
        else:  # still cross-check the others; don't report its name as missing
            known.add(path.stem)
    problems.extend(check_template_set(result, known_objects=known, known_roles=known_roles,
                                       installed=installed,
                                       installed_settings=installed_settings))
    if problems:
        raise DefinitionError(problems)
    return result
