"""Lookup filters: a lookup may restrict its candidates, e.g. a line's product must be
on sale (``on_shelf == True``), or a person must belong to the record's account
(``account == record.account``).

The same SQL condition narrows the type-ahead and checks the saved value, so what can
be picked is exactly what can be saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.sql.elements import ColumnElement

from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing.expression_sql import to_sql
from metacrm.metadata.computed import RECORD
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef

__all__ = ["candidates_condition", "check", "record_names"]


def record_names(registry: Registry, obj: ObjectDef, field: str) -> list[str]:
    """The fields of the record being edited that the filter of ``field`` reads."""
    found = registry.logic_of(obj).lookup_filters.get(field)
    if found is None:
        return []
    return sorted(n[len(RECORD):] for n in found.names if n.startswith(RECORD))


def candidates_condition(registry: Registry, obj: ObjectDef, field: str,
                         record: Mapping[str, Any], *, coerce: bool = True
                         ) -> ColumnElement | None:
    """The condition on the target's table that candidates for ``field`` must meet, given
    the (raw, when ``coerce``) values of the record being edited; None: no filter."""
    found = registry.logic_of(obj).lookup_filters.get(field)
    if found is None:
        return None
    target = registry.table(obj.all_fields[field].target_object)
    constants: dict[str, Any] = {}
    for name in record_names(registry, obj, field):
        value, f = record.get(name), obj.queryable.get(name)
        if coerce and value not in (None, "") and f is not None:
            try:
                value = f.kind.coerce(value, f)
            except InvalidValue:
                value = None
        constants[RECORD + name] = None if value == "" else value
    return to_sql(found, lambda name: target.c[name], constants)


def check(conn: Connection, registry: Registry, obj: ObjectDef,
          rows: Sequence[Mapping[str, Any]], errors: dict[str, str]) -> None:
    """Each filtered lookup's value must be a candidate, given the row's other values."""
    for field in registry.logic_of(obj).lookup_filters:
        if field in errors:
            continue
        target = registry.table(obj.all_fields[field].target_object)
        for row in rows:
            value = row.get(field)
            if value is None:
                continue
            condition = candidates_condition(registry, obj, field, row, coerce=False)
            assert condition is not None  # the field has a filter
            if conn.execute(select(target.c.id).where(target.c.id == value, condition)).first():
                continue
            errors[field] = Message("record %(id)d cannot be chosen here (the field's filter "
                                    "is %(filter)s)", id=value,
                                    filter=registry.logic_of(obj).lookup_filters[field].source)
            break
