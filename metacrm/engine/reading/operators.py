"""The filter-operator catalogue: each operator parses its value and compiles to SQL.

Field types list which operators they allow; the value is coerced by the field's own
type, so a filter value is checked exactly like a saved one, and always bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from metacrm.engine.errors import BadQuery
from metacrm.metadata import regions
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.model import FieldDef

__all__ = ["FilterContext", "compile_condition"]

MAX_LIST_VALUES = 500
MAX_RELATIVE_DAYS = 3660


@dataclass(frozen=True)
class FilterContext:
    dialect: str
    today: dt.date
    tz: dt.tzinfo | None  # None: an unknown zone name, read as the server's local time


def _scalar(f: FieldDef, value: Any) -> Any:
    if value is None or isinstance(value, (list, dict)):
        raise BadQuery(f"filter on {f.name}: needs a single value", field=f.name)
    try:
        return f.kind.read_value(value, f)
    except InvalidValue as exc:
        raise BadQuery(f"filter on {f.name}: value {exc}", field=f.name) from None


def _list(f: FieldDef, value: Any) -> list:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST_VALUES:
        raise BadQuery(f"filter on {f.name}: needs a list of 1 to {MAX_LIST_VALUES} values",
                       field=f.name)
    return [_scalar(f, v) for v in value]


def _text(f: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadQuery(f"filter on {f.name}: needs text of 1 to 200 characters", field=f.name)
    return value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_bounds(f: FieldDef, start: dt.date, end: dt.date, ctx: FilterContext) -> tuple:
    """Half-open [start, end) as values of the field's own type."""
    if f.kind.storage == "datetime":
        def at(d: dt.date) -> dt.datetime:
            return dt.datetime.combine(d, dt.time(), ctx.tz).astimezone(dt.UTC)

        return at(start), at(end)
    return start, end


def _in_range(col, f: FieldDef, start: dt.date, end: dt.date, ctx: FilterContext):
    low, high = _day_bounds(f, start, end, ctx)
    return and_(col >= low, col < high)


def _quarter_start(d: dt.date) -> dt.date:
    return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _week_start(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def _period(name: str) -> Callable[[dt.date, Any], tuple[dt.date, dt.date]]:
    day = dt.timedelta(days=1)
    week = dt.timedelta(days=7)
    month = relativedelta(months=1)
    quarter = relativedelta(months=3)
    year = relativedelta(years=1)
    table: dict[str, Callable[[dt.date, Any], tuple[dt.date, dt.date]]] = {
        "today": lambda t, n: (t, t + day),
        "yesterday": lambda t, n: (t - day, t),
        "tomorrow": lambda t, n: (t + day, t + 2 * day),
        "this_week": lambda t, n: (_week_start(t), _week_start(t) + week),
        "last_week": lambda t, n: (_week_start(t) - week, _week_start(t)),
        "next_week": lambda t, n: (_week_start(t) + week, _week_start(t) + 2 * week),
        "this_month": lambda t, n: (t.replace(day=1), t.replace(day=1) + month),
        "last_month": lambda t, n: (t.replace(day=1) - month, t.replace(day=1)),
        "next_month": lambda t, n: (t.replace(day=1) + month, t.replace(day=1) + 2 * month),
        "this_quarter": lambda t, n: (_quarter_start(t), _quarter_start(t) + quarter),
        "last_quarter": lambda t, n: (_quarter_start(t) - quarter, _quarter_start(t)),
        "this_year": lambda t, n: (t.replace(month=1, day=1), t.replace(month=1, day=1) + year),
        "last_year": lambda t, n: (t.replace(month=1, day=1) - year, t.replace(month=1, day=1)),
        "last_n_days": lambda t, n: (t - dt.timedelta(days=n - 1), t + day),
        "next_n_days": lambda t, n: (t, t + dt.timedelta(days=n)),
    }
    return table[name]


def _days(f: FieldDef, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RELATIVE_DAYS:
        raise BadQuery(f"filter on {f.name}: needs a number of days from 1 to {MAX_RELATIVE_DAYS}",
                       field=f.name)
    return value


def _json_contains(col, values: list[str], ctx: FilterContext):
    if ctx.dialect == "postgresql":
        return or_(*(type_coerce(col, JSONB).contains([v]) for v in values))
    each = func.json_each(col).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value.in_(values)))


@dataclass(frozen=True)
class Operator:
    name: str
    compile: Callable[[Any, FieldDef, Any, FilterContext], ColumnElement]
    needs_value: bool = True


def _is_null(col, f, value, ctx):
    if not isinstance(value, bool):
        raise BadQuery(f"filter on {f.name}: is_null needs true or false", field=f.name)
    return col.is_(None) if value else col.is_not(None)


def _between(col, f, value, ctx):
    if not isinstance(value, list) or len(value) != 2:
        raise BadQuery(f"filter on {f.name}: between needs [low, high]", field=f.name)
    low, high = _scalar(f, value[0]), _scalar(f, value[1])
    return and_(col >= low, col <= high)


def _contains(col, f, value, ctx):
    if f.kind.storage == "json":
        values = value if isinstance(value, list) else [value]
        return _json_contains(col, [_option(f, v) for v in values], ctx)
    return col.ilike(f"%{_escape_like(_text(f, value))}%", escape="\\")


def _option(f: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or f.option(value) is None:
        raise BadQuery(f"filter on {f.name}: '{str(value)[:50]}' is not an option", field=f.name)
    return value


def _not_contains(col, f, value, ctx):
    return or_(col.is_(None), not_(_contains(col, f, value, ctx)))


def _within(col, f, value, ctx):
    """Inside a region: its code's prefix (a province's two digits) starts every code in it."""
    return col.like(f"{regions.prefix(_scalar(f, value))}%")


def _relative(name: str) -> Operator:
    period = _period(name)
    takes_days = name.endswith("_n_days")

    def compile_(col, f, value, ctx):
        n = _days(f, value) if takes_days else None
        start, end = period(ctx.today, n)
        return _in_range(col, f, start, end, ctx)

    return Operator(name, compile_, needs_value=takes_days)


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", lambda col, f, v, ctx: col == _scalar(f, v)),
        Operator("ne", lambda col, f, v, ctx: or_(col.is_(None), col != _scalar(f, v))),
        Operator("lt", lambda col, f, v, ctx: col < _scalar(f, v)),
        Operator("lte", lambda col, f, v, ctx: col <= _scalar(f, v)),
        Operator("gt", lambda col, f, v, ctx: col > _scalar(f, v)),
        Operator("gte", lambda col, f, v, ctx: col >= _scalar(f, v)),
        Operator("in", lambda col, f, v, ctx: col.in_(_list(f, v))),
        Operator("not_in", lambda col, f, v, ctx: or_(col.is_(None), col.not_in(_list(f, v)))),
        Operator("contains", _contains),
        Operator("not_contains", _not_contains),
        Operator("starts_with", lambda col, f, v, ctx: col.like(
            f"{_escape_like(_text(f, v))}%", escape="\\")),
        Operator("is_null", _is_null),
        Operator("within", _within),
        Operator("between", _between),
        *(_relative(name) for name in (
            "today", "yesterday", "tomorrow", "this_week", "last_week", "next_week",
            "this_month", "last_month", "next_month", "this_quarter", "last_quarter",
            "this_year", "last_year", "last_n_days", "next_n_days")),
    )
}


def compile_condition(col, f: FieldDef, op_name: str, value: Any,
                      ctx: FilterContext) -> ColumnElement:
    if op_name not in f.kind.operators or op_name not in OPERATORS:
        allowed = ", ".join(f.kind.operators)
        raise BadQuery(f"filter on {f.name}: operator '{str(op_name)[:30]}' is not allowed "
                       f"for a {f.type} field (allowed: {allowed})", field=f.name)
    return OPERATORS[op_name].compile(col, f, value, ctx)

