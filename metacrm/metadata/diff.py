"""A readable difference between two versions of the metadata, for the version history.

Items of keyed lists (fields, options, business types) are matched by their key, so a
relabelled field reads as one label change, not as a removal and an addition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from metacrm.metadata.overlay import item_key, keyed

KIND_NAMES = {"object": "object", "picklist": "picklist", "template": "template",
              "setting": "name"}


@dataclass(frozen=True)
class DiffLine:
    path: str
    change: str  # added, removed, changed, reordered
    before: Any = None
    after: Any = None

    @property
    def shown(self) -> str:
        """The values the line names: ``before → after`` for a change, a plain value
        added, else nothing (a page puts its own word for ``change`` before it)."""
        if self.change == "changed":
            return f"{_show(self.before)} → {_show(self.after)}"
        if self.change == "added" and not isinstance(self.after, dict | list):
            return _show(self.after)
        return ""

    def __str__(self) -> str:
        if self.change == "changed":
            return f"{self.path}: {self.shown}"
        return f"{self.path}: {' '.join(filter(None, (self.change, self.shown)))}"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str) if value is not None else "—"


def diff_documents(before: dict[tuple[str, str], dict], after: dict[tuple[str, str], dict]
                   ) -> list[DiffLine]:
    """Documents by (kind, key) -> what changed, document by document."""
    out: list[DiffLine] = []
    for ident in sorted(before.keys() | after.keys()):
        kind, key = ident
        path = f"{KIND_NAMES.get(kind, kind)} {key}"
        if ident not in before:
            out.append(DiffLine(path, "added", after=after[ident]))
        elif ident not in after:
            out.append(DiffLine(path, "removed", before=before[ident]))
        else:
            out.extend(_diff(path, before[ident], after[ident]))
    return out


def _diff(path: str, before: Any, after: Any) -> Iterator[DiffLine]:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(k for k in after if k not in before)]:
            here = f"{path} › {key}"
            if key not in after:
                yield DiffLine(here, "removed", before=before[key])
            elif key not in before:
                yield DiffLine(here, "added", after=after[key])
            else:
                yield from _diff(here, before[key], after[key])
    elif isinstance(before, list) and isinstance(after, list) and keyed(before) \
            and keyed(after):
        old = {item_key(i): i for i in before}
        new = {item_key(i): i for i in after}
        for key in [*old, *(k for k in new if k not in old)]:
            here = f"{path} › {key}"
            if key not in new:
                yield DiffLine(here, "removed", before=old[key])
            elif key not in old:
                yield DiffLine(here, "added", after=new[key])
            else:
                yield from _diff(here, old[key], new[key])
        if [k for k in old if k in new] != [k for k in new if k in old]:
            yield DiffLine(path, "reordered")
    else:
        yield DiffLine(path, "changed", before, after)
