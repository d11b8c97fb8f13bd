"""A record's history (操作记录) as people read it.

The audit log keeps values as stored: ids, codes, ISO text. Here each value is shown the
way the field shows it everywhere else, through the field catalogue: a lookup by the
title of the record it names (if the reader may see that record), a user, department or
dimension node by its name, an option or business type by its label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _

from metacrm.engine import audit
from metacrm.engine.access import permissions, users
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.context import actor
from metacrm.ui.i18n import label, language
from metacrm.ui.records import widgets
from metacrm.ui.records.forms import reference_titles
from metacrm.ui.runtime import db, registry

Titles = dict[int, str]


def _source(f: FieldDef) -> tuple[str | None, str | None, str | None]:
    """Fields whose ids name the same things share one look-up."""
    return f.kind.references, f.target, f.dimension


def _ids(values: Iterable[Any]) -> set[int]:
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def history_entries(obj: ObjectDef, record_id: int) -> list[dict[str, Any]]:
    """The record's audit entries, newest first, each with ``actor``, ``note`` (a team
    change) and ``rows``: (field, before, after) as text, hidden fields left out."""
    entries = audit.history(db(), obj.name, record_id, limit=100)
    hidden = permissions.hidden_fields(db(), actor(), obj, registry())
    fields = obj.queryable | obj.all_fields
    wanted: dict[tuple, tuple[FieldDef, set[int]]] = {}
    people = {e["actor_id"] for e in entries if e["actor_id"]}
    for entry in entries:
        for name, change in entry["changes"].items():
            f = fields.get(name)
            if name == "team":
                people.update(v["user"] for v in change if isinstance(v, dict))
            elif f is not None and name not in hidden and f.kind.references:
                wanted.setdefault(_source(f), (f, set()))[1].update(_ids(change))
    user_source = ("user", None, None)
    people |= wanted.pop(user_source, (None, set()))[1]
    titles = {source: reference_titles(f, ids) for source, (f, ids) in wanted.items()}
    titles[user_source] = names = users.display_names(db(), people)
    for entry in entries:
        entry["actor"] = names.get(entry["actor_id"], _("Automatic"))
        entry["via_label"] = via_label(entry.get("via"))
        entry["rows"], entry["note"] = [], ""
        for name, (before, after) in entry["changes"].items():
            f = fields.get(name)
            if name == "team":
                entry["note"] = team_note(before, after, names)
            elif name not in hidden:
                known = titles.get(_source(f), {}) if f is not None else {}
                entry["rows"].append((f, change_value(f, before, known),
                                      change_value(f, after, known)))
    return entries


def via_label(via: str | None) -> str | None:
    """The automation that made a change (``automation:<object>.<name>``), by its label;
    its name when it is no longer defined."""
    if not via or not via.startswith("automation:"):
        return None
    ident = via.removeprefix("automation:")
    obj_name, _dot, name = ident.partition(".")
    obj = registry().objects.get(obj_name)
    found = next((a for a in obj.automations if a.name == name), None) if obj else None
    return label(found.label) if found is not None else ident


def team_note(before: dict | None, after: dict | None, names: dict[int, str]) -> str:
    if after:
        access = _("read and write") if after.get("access") == "write" else _("read only")
        return _("%(user)s added (%(access)s)", user=names.get(after["user"], after["user"]),
                 access=access)
    return _("%(user)s removed", user=names.get(before["user"], before["user"]))


def change_value(f: FieldDef | None, value: Any, titles: Titles) -> str:
    """An audit value (as stored in JSON) shown like the field shows it; a reference by
    what ``titles`` calls it."""
    if value is None:
        return "—"
    if f is None:
        return str(value)
    if f.kind.references:
        if value in titles:
            return titles[value]
        return _("(record %(id)d)", id=value) if isinstance(value, int) else str(value)
    try:
        value = f.kind.read_value(value, f)  # a formula's reads like its result type's
    except ValueError:
        return str(value)
    return widgets.display(f, value, language()) or "—"
