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
from metacrm.metadata.fieldtypes import InvalidValue, storable
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import FieldDef

__all__ = ["FilterContext", "compile_condition"]

MAX_LIST_VALUES = 500
MAX_RELATIVE_DAYS = 3660


@dataclass(frozen=True)
class FilterContext:
    dialect: str
    today: dt.date
    tz: dt.tzinfo | None  # None: an unknown zone name, read as the server's local time


def _named(f: FieldDef):
    """A field in a refusal: its name in English, its label in Chinese."""
    return named(f.name, f.label)


def _scalar(f: FieldDef, value: Any) -> Any:
    if value is None or isinstance(value, (list, dict)):
        raise BadQuery(Message("filter on %(field)s: needs a single value", field=_named(f)),
                       field=f.name)
    try:
        return f.kind.read_value(value, f)
    except InvalidValue as exc:
        raise BadQuery(Message("filter on %(field)s: value %(problem)s", field=_named(f),
                               problem=exc.message), field=f.name) from None


def _list(f: FieldDef, value: Any) -> list:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST_VALUES:
        raise BadQuery(Message("filter on %(field)s: needs a list of 1 to %(most)d values",
                               field=_named(f), most=MAX_LIST_VALUES), field=f.name)
    return [_scalar(f, v) for v in value]


def _text(f: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadQuery(Message("filter on %(field)s: needs text of 1 to 200 characters",
                               field=_named(f)), field=f.name)
    if not storable(value):
        raise BadQuery(Message("filter on %(field)s: text with a NUL or a lone surrogate",
                               field=_named(f)), field=f.name)
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


_DAY = dt.timedelta(days=1)
_WEEK = dt.timedelta(days=7)
_MONTH = relativedelta(months=1)
_QUARTER = relativedelta(months=3)
_YEAR = relativedelta(years=1)
Period = Callable[[dt.date, Any], tuple[dt.date, dt.date]]

# The relative-date operators: each one's days [start, end) from today (and n), and label.
# Field types name them in metadata/fieldtypes.RELATIVE_DATE_OPS (the metadata layer
# cannot import this one); a test keeps the two the same.
PERIODS: dict[str, tuple[Period, Message]] = {
    "today": (lambda t, n: (t, t + _DAY), Message("today")),
    "yesterday": (lambda t, n: (t - _DAY, t), Message("yesterday")),
    "tomorrow": (lambda t, n: (t + _DAY, t + 2 * _DAY), Message("tomorrow")),
    "this_week": (lambda t, n: (_week_start(t), _week_start(t) + _WEEK), Message("this week")),
    "last_week": (lambda t, n: (_week_start(t) - _WEEK, _week_start(t)), Message("last week")),
    "next_week": (lambda t, n: (_week_start(t) + _WEEK, _week_start(t) + 2 * _WEEK),
                  Message("next week")),
    "this_month": (lambda t, n: (t.replace(day=1), t.replace(day=1) + _MONTH),
                   Message("this month")),
    "last_month": (lambda t, n: (t.replace(day=1) - _MONTH, t.replace(day=1)),
                   Message("last month")),
    "next_month": (lambda t, n: (t.replace(day=1) + _MONTH, t.replace(day=1) + 2 * _MONTH),
                   Message("next month")),
    "this_quarter": (lambda t, n: (_quarter_start(t), _quarter_start(t) + _QUARTER),
                     Message("this quarter")),
    "last_quarter": (lambda t, n: (_quarter_start(t) - _QUARTER, _quarter_start(t)),
                     Message("last quarter")),
    "this_year": (lambda t, n: (t.replace(month=1, day=1), t.replace(month=1, day=1) + _YEAR),
                  Message("this year")),
    "last_year": (lambda t, n: (t.replace(month=1, day=1) - _YEAR, t.replace(month=1, day=1)),
                  Message("last year")),
    "last_n_days": (lambda t, n: (t - dt.timedelta(days=n - 1), t + _DAY),
                    Message("in the last N days")),
    "next_n_days": (lambda t, n: (t, t + dt.timedelta(days=n)), Message("in the next N days")),
}


def _days(f: FieldDef, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RELATIVE_DAYS:
        raise BadQuery(Message("filter on %(field)s: needs a number of days from 1 to %(most)d",
                               field=_named(f), most=MAX_RELATIVE_DAYS), field=f.name)
    return value


def _json_contains(col, values: list[str], ctx: FilterContext):
    if ctx.dialect == "postgresql":
        return or_(*(type_coerce(col, JSONB).contains([v]) for v in values))
    each = func.json_each(col).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value.in_(values)))


# What an operator's value is, for the filter builder: one value, a list of them, a
# [low, high] pair, true/false, a number of days, or nothing.
VALUE_KINDS = ("one", "many", "pair", "flag", "days", "none")


@dataclass(frozen=True)
class Operator:
    name: str
    compile: Callable[[Any, FieldDef, Any, FilterContext], ColumnElement]
    label: Message  # how the filter builder names it
    value: str = "one"  # one of VALUE_KINDS

    @property
    def needs_value(self) -> bool:
        return self.value != "none"


def _is_null(col, f, value, ctx):
    if not isinstance(value, bool):
        raise BadQuery(Message("filter on %(field)s: is_null needs true or false",
                               field=_named(f)), field=f.name)
    return col.is_(None) if value else col.is_not(None)


def _between(col, f, value, ctx):
    if not isinstance(value, list) or len(value) != 2:
        raise BadQuery(Message("filter on %(field)s: between needs [low, high]",
                               field=_named(f)), field=f.name)
    low, high = _scalar(f, value[0]), _scalar(f, value[1])
    return and_(col >= low, col <= high)


def _contains(col, f, value, ctx):
    if f.kind.storage == "json":
        values = value if isinstance(value, list) else [value]
        return _json_contains(col, [_option(f, v) for v in values], ctx)
    return col.ilike(f"%{_escape_like(_text(f, value))}%", escape="\\")


def _option(f: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or f.option(value) is None:
        raise BadQuery(Message("filter on %(field)s: '%(value)s' is not an option",
                               field=_named(f), value=str(value)[:50]), field=f.name)
    return value


def _not_contains(col, f, value, ctx):
    return or_(col.is_(None), not_(_contains(col, f, value, ctx)))


def _within(col, f, value, ctx):
    """Inside a region: its code's prefix (a province's two digits) starts every code in it."""
    return col.like(f"{regions.prefix(_scalar(f, value))}%")


def _relative(name: str) -> Operator:
    period, label = PERIODS[name]
    takes_days = name.endswith("_n_days")

    def compile_(col, f, value, ctx):
        n = _days(f, value) if takes_days else None
        start, end = period(ctx.today, n)
        return _in_range(col, f, start, end, ctx)

    return Operator(name, compile_, label, value="days" if takes_days else "none")


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", lambda col, f, v, ctx: col == _scalar(f, v), Message("equals")),
        Operator("ne", lambda col, f, v, ctx: or_(col.is_(None), col != _scalar(f, v)),
                 Message("does not equal")),
        Operator("lt", lambda col, f, v, ctx: col < _scalar(f, v), Message("less than")),
        Operator("lte", lambda col, f, v, ctx: col <= _scalar(f, v), Message("at most")),
        Operator("gt", lambda col, f, v, ctx: col > _scalar(f, v), Message("greater than")),
        Operator("gte", lambda col, f, v, ctx: col >= _scalar(f, v), Message("at least")),
        Operator("in", lambda col, f, v, ctx: col.in_(_list(f, v)), Message("is any of"),
                 value="many"),
        Operator("not_in", lambda col, f, v, ctx: or_(col.is_(None), col.not_in(_list(f, v))),
                 Message("is none of"), value="many"),
        Operator("contains", _contains, Message("contains")),
        Operator("not_contains", _not_contains, Message("does not contain")),
        Operator("starts_with", lambda col, f, v, ctx: col.like(
            f"{_escape_like(_text(f, v))}%", escape="\\"), Message("starts with")),
        Operator("is_null", _is_null, Message("is empty"), value="flag"),
        Operator("within", _within, Message("is within (region code)")),
        Operator("between", _between, Message("between"), value="pair"),
        *(_relative(name) for name in PERIODS),
    )
}


def compile_condition(col, f: FieldDef, op_name: str, value: Any,
                      ctx: FilterContext) -> ColumnElement:
    if op_name not in f.kind.operators or op_name not in OPERATORS:
        allowed = ", ".join(f.kind.operators)
        raise BadQuery(Message("filter on %(field)s: operator '%(op)s' is not allowed for a "
                               "%(type)s field (allowed: %(allowed)s)", field=_named(f),
                               op=str(op_name)[:30], type=f.type, allowed=allowed),
                       field=f.name)
    return OPERATORS[op_name].compile(col, f, value, ctx)

