"""Default expressions, formulas and validation rules, evaluated per record.

The lookup fields they read (``account.level``) are fetched for a whole batch in one
statement per lookup, never per record. Formulas are stored, so lists filter, sort and
index them like any column.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from metacrm.engine.schema.registry import Registry
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import LabelMessage, Message
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["Computer"]

Row = dict[str, Any]


class Computer:
    """The computed parts of one object for one registry version."""

    def __init__(self, conn: Connection, registry: Registry, obj: ObjectDef):
        self.conn = conn
        self.registry = registry
        self.obj = obj
        self.logic = registry.logic_of(obj)
        expressions = [e for _, e in (*self.logic.formulas, *self.logic.defaults,
                                      *self.logic.rules)]
        self.blank = dict.fromkeys(n for e in expressions for n in e.names)
        self.hops = self.logic.hops
        self.active = bool(expressions)

    def names(self, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Per row, every name the expressions read: its fields and its lookups' fields."""
        out = [{**self.blank, **row} for row in rows]
        for lookup, fields in self.hops.items():
            ids = {row.get(lookup) for row in rows} - {None}
            found: dict[int | None, Any] = {}
            if ids:
                target = self.registry.table(self.obj.all_fields[lookup].target_object)
                stmt = select(target.c.id, *(target.c[f] for f in sorted(fields))).where(
                    target.c.id.in_(ids))
                found = {r.id: r._mapping for r in self.conn.execute(stmt)}
            for names in out:
                hit = found.get(names.get(lookup))
                for f in fields:
                    names[f"{lookup}.{f}"] = hit[f] if hit is not None else None
        return out

    def fill_defaults(self, row: Row, names: Row, given: Collection[str],
                      errors: dict[str, str]) -> None:
        for f, expression in self.logic.defaults:
            if f.name in given or row.get(f.name) is not None:
                continue
            value = _evaluate(expression, names, f, errors)
            if value is not None and f.name not in errors:
                value = _store(f, f.kind.coerce, value, errors)
            row[f.name] = names[f.name] = value

    def fill_formulas(self, row: Row, names: Row, errors: dict[str, str]) -> None:
        for f, expression in self.logic.formulas:
            value = _evaluate(expression, names, f, errors)
            if value is not None:
                value = _store(f, f.kind.read_value, value, errors)
            row[f.name] = names[f.name] = value

    def check_rules(self, names: Row, errors: dict[str, str]) -> None:
        for rule, expression in self.logic.rules:
            try:
                holds = expression.holds(names)
            except (TypeError, ValueError, ArithmeticError):
                holds = True  # a value the checker could not foresee: not the user's fault
            if not holds:
                message = LabelMessage(rule.message)
                for name in rule.fields or (self.obj.title_field,):
                    errors.setdefault(name, message)


def _evaluate(expression, names: Row, f: FieldDef, errors: dict[str, str]) -> Any:
    try:
        return expression.evaluate(names)
    except (TypeError, ValueError, ArithmeticError) as exc:
        errors[f.name] = Message("could not be calculated: %(problem)s", problem=str(exc)[:100])
        return None


def _store(f: FieldDef, coerce, value: Any, errors: dict[str, str]) -> Any:
    try:
        return coerce(value, f)
    except InvalidValue as exc:
        errors[f.name] = Message("the calculated value %(problem)s", problem=exc.message)
        return None
