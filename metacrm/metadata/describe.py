"""Definitions back to plain JSON, for the API and for export."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from metacrm.metadata.model import FieldDef, ObjectDef, OptionDef, SectionDef


def _option(o: OptionDef) -> dict[str, Any]:
    out: dict[str, Any] = {"value": o.value, "label": o.label.as_dict(), "active": o.active}
    if o.color:
        out["color"] = o.color
    return out


def describe_field(f: FieldDef) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.name, "key": f.key, "type": f.type, "label": f.label.as_dict(),
        "required": f.required, "unique": f.unique, "system": f.system,
        "writable": f.writable or f.name in ("owner", "business_type"),
        "sortable": f.kind.sortable, "operators": list(f.kind.operators),
    }
    if f.help:
        out["help"] = f.help.as_dict()
    if f.default is not None:
        out["default"] = f.default
    if f.kind.storage == "string" and not f.kind.options:
        out["max_length"] = f.max_length or f.kind.default_max_length
    if f.kind.storage == "decimal":
        out["precision"], out["scale"] = f.precision, f.scale
    if f.min_value is not None:
        out["min"] = format(f.min_value, "f")
    if f.max_value is not None:
        out["max"] = format(f.max_value, "f")
    if f.options:
        out["options"] = [_option(o) for o in f.options]
    if f.picklist:
        out["picklist"] = f.picklist
    if f.target:
        out["target"] = f.target
    if f.dimension:
        out["dimension"] = f.dimension
    if f.pattern:
        out["pattern"] = f.pattern
    return out


def _sections(sections: tuple[SectionDef, ...], hidden: Collection[str] = frozenset()
              ) -> list[dict[str, Any]]:
    return [{"label": s.label.as_dict(), "fields": [n for n in s.fields if n not in hidden]}
            for s in sections]


def describe_object(obj: ObjectDef, hidden: Collection[str] = frozenset()) -> dict[str, Any]:
    """``hidden``: fields left out wherever they would be named (hidden from the reader)."""
    def shown(names) -> list[str]:
        return [n for n in names if n not in hidden]

    return {
        "name": obj.name, "key": obj.key, "label": obj.label.as_dict(),
        "group": obj.group, "icon": obj.icon, "title_field": obj.title_field,
        "search_fields": shown(obj.search_fields), "features": list(obj.features),
        "fields": [describe_field(f) for f in obj.queryable.values() if f.name not in hidden],
        "business_types": [
            {"name": b.name, "key": b.key, "label": b.label.as_dict(),
             "departments": list(b.departments), "fields": shown(b.fields),
             "picklists": {k: list(v) for k, v in b.picklists.items() if k not in hidden},
             "required": shown(b.required), "form": _sections(b.form, hidden) or None}
            for b in obj.business_types],
        "layouts": {
            "form": _sections(obj.form, hidden),
            "list": {"columns": shown(obj.list_columns), "sort": obj.default_sort},
            "related": None if obj.related is None else [
                {"object": r.object, "field": r.field, "columns": list(r.columns)}
                for r in obj.related],
        },
    }
