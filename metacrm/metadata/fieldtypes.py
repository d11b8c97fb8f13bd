"""The field-type catalogue: one entry per type, and adding a type is adding one entry.

Each type knows how its values are stored (a storage kind that the engine maps to an
SQL type), how input is coerced and validated, its JSON Schema fragment (for the API
and OpenAPI), the filter operators it allows and how it is displayed. Nothing here
touches SQL: the engine owns the storage-kind → column-type mapping.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import TYPE_CHECKING, Any

from dateutil import parser as date_parser

from metacrm.metadata.messages import Message

if TYPE_CHECKING:
    from metacrm.metadata.model import FieldDef

RELATIVE_DATE_OPS = (
    "today", "yesterday", "tomorrow", "this_week", "last_week", "next_week",
    "this_month", "last_month", "next_month", "this_quarter", "last_quarter",
    "this_year", "last_year", "last_n_days", "next_n_days",
)
_EQUALITY = ("eq", "ne", "in", "not_in", "is_null")
_ORDERED = _EQUALITY + ("lt", "lte", "gt", "gte", "between")
_TEXTUAL = _EQUALITY + ("contains", "not_contains", "starts_with")
_TEMPORAL = _ORDERED + RELATIVE_DATE_OPS

MAX_BIGINT = 2**63 - 1
DECIMAL_PRECISION = 18
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone one: no database stores it


class InvalidValue(ValueError):
    """A value that does not fit its field; the message is shown to the user."""

    def __init__(self, template: str, **params: Any):
        self.message = Message(template, **params)
        super().__init__(self.message)


def storable(text: str) -> bool:
    """Text every database stores: no NUL (PostgreSQL refuses it), no lone surrogate
    (it has no UTF-8 form)."""
    return "\x00" not in text and _SURROGATE.search(text) is None


def _text(value: Any, f: FieldDef) -> str:
    if not isinstance(value, str):
        raise InvalidValue("must be a string")
    if "\x00" in value:
        raise InvalidValue("must not contain NUL characters")
    if _SURROGATE.search(value):
        raise InvalidValue("is not valid Unicode text (it holds a lone surrogate)")
    limit = f.text_limit
    if limit and len(value) > limit:
        raise InvalidValue("is longer than %(limit)d characters", limit=limit)
    return value


def _pattern_text(regex: re.Pattern[str], problem: Message) -> Callable[[Any, FieldDef], str]:
    def coerce(value: Any, f: FieldDef) -> str:
        text = _text(value, f).strip()
        if not regex.fullmatch(text):
            raise InvalidValue(problem.template)
        return text

    return coerce


def _whole_number(value: Any, f: FieldDef) -> int:
    if isinstance(value, bool):
        raise InvalidValue("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidValue("must be a whole number")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not re.fullmatch(r"[+-]?\d{1,19}", text):
            raise InvalidValue("must be a whole number")
        value = int(text)
    elif isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise InvalidValue("must be a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidValue("must be a whole number")
    if abs(value) > MAX_BIGINT:
        raise InvalidValue("is too large")
    return value


def bound_text(bound: Decimal) -> str:
    """A range bound as a person writes it: 0, 100, 0.5 (no exponent, no trailing zeros)."""
    return format(bound.normalize(), "f")


def _in_range(value: Any, f: FieldDef) -> Any:
    """The field's ``min``/``max``, checked on input only: a value stored before the range
    was set still reads, filters and shows."""
    if f.min_value is not None and value < f.min_value:
        raise InvalidValue("must be at least %(min)s", min=bound_text(f.min_value))
    if f.max_value is not None and value > f.max_value:
        raise InvalidValue("must be at most %(max)s", max=bound_text(f.max_value))
    return value


def _integer(value: Any, f: FieldDef) -> int:
    return _in_range(_whole_number(value, f), f)


def _decimal_number(value: Any, f: FieldDef) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidValue("must be a number")
    try:
        number = Decimal(str(value).strip().replace(",", "")) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise InvalidValue("must be a number") from None
    if not number.is_finite():
        raise InvalidValue("must be a finite number")
    allowed = f.precision - f.scale
    # Check the magnitude before rounding: quantize fails on numbers this large.
    if number and number.adjusted() + 1 > allowed:
        raise InvalidValue("has more than %(digits)d digits before the decimal point", digits=allowed)
    number = number.quantize(Decimal(1).scaleb(-f.scale), rounding=ROUND_HALF_UP)
    if number and number.adjusted() + 1 > allowed:  # 99.995 rounds up to 100.00
        raise InvalidValue("has more than %(digits)d digits before the decimal point", digits=allowed)
    return number


def _decimal(value: Any, f: FieldDef) -> Decimal:
    return _in_range(_decimal_number(value, f), f)


def _boolean(value: Any, f: FieldDef) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "是"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off", "否"}:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidValue("must be true or false")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\d)")


def _date(value: Any, f: FieldDef) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            _no_such_day(value.strip())
    raise InvalidValue("must be a date as YYYY-MM-DD")


def _no_such_day(text: str) -> None:
    """A well-formed date that is not in the calendar (2026-02-30) says so; the rest is a
    wrong format, left to the caller."""
    found = _DATE.match(text)
    if found is None:
        return
    try:
        dt.date.fromisoformat(found.group())
    except ValueError:
        raise InvalidValue("%(value)s is not a date that exists", value=found.group()) from None


def _datetime(value: Any, f: FieldDef) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = date_parser.isoparse(value.strip())
        except (ValueError, OverflowError):
            _no_such_day(value.strip())
            raise InvalidValue("must be a date and time in ISO 8601") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    raise InvalidValue("must be a date and time in ISO 8601")


def _select(value: Any, f: FieldDef) -> str:
    if not isinstance(value, str):
        raise InvalidValue("must be one of the field's options")
    if f.option(value) is None:  # a deactivated option stays valid on its records
        allowed = ", ".join(f.option_values[:20])
        raise InvalidValue("'%(value)s' is not one of the options (%(allowed)s)",
                           value=value[:50], allowed=allowed)
    return value


def _multiselect(value: Any, f: FieldDef) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise InvalidValue("must be a list of the field's options")
    chosen: list[str] = []
    for item in value:
        item = _select(item, f)
        if item not in chosen:
            chosen.append(item)
    return chosen


def _reference(value: Any, f: FieldDef) -> int:
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    try:
        number = _whole_number(value, f)
    except InvalidValue:
        raise InvalidValue("must be a record id") from None
    if number <= 0:
        raise InvalidValue("must be a record id")
    return number


def _region(value: Any, f: FieldDef) -> str:
    from metacrm.metadata import regions

    code = _text(value, f).strip() if isinstance(value, str) else str(_whole_number(value, f))
    found = regions.region(code)
    if found is None:
        raise InvalidValue("'%(value)s' is not a region code", value=code[:12])
    if found.level > f.region_level:
        raise InvalidValue("choose a region down to the %(level)s level",
                           level=REGION_LEVELS[f.region_level])
    return code


def _region_display(value: str, f: FieldDef, lang: str) -> str:
    from metacrm.metadata import regions

    return regions.display(value, lang)


def _lines(value: Any, f: FieldDef) -> list[dict]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value):
        raise InvalidValue("must be a list of line objects")
    return list(value)


def _generated(value: Any, f: FieldDef) -> Any:
    raise InvalidValue("is generated by the system and cannot be set")


def _identity(value: Any) -> Any:
    return value


def _iso(value: Any) -> Any:
    return value.isoformat()


def _decimal_json(value: Decimal) -> str:
    return format(value, "f")


def _currency_display(value: Decimal, f: FieldDef, lang: str) -> str:
    return f"{f.currency_symbol}{value:,.{f.scale}f}"


def _number_display(value: Any, f: FieldDef, lang: str) -> str:
    return f"{value:,}" if not isinstance(value, Decimal) else f"{value:,.{f.scale}f}"


def _percent_display(value: Decimal, f: FieldDef, lang: str) -> str:
    return f"{value:.{f.scale}f}%"


def _boolean_display(value: bool, f: FieldDef, lang: str) -> str:
    return {True: {"zh": "是", "en": "Yes"}, False: {"zh": "否", "en": "No"}}[value][lang]


def _option_display(value: str, f: FieldDef, lang: str) -> str:
    option = f.option(value)
    return option.label.get(lang) if option else value


def _multi_display(value: list[str], f: FieldDef, lang: str) -> str:
    sep = "、" if lang == "zh" else ", "
    return sep.join(_option_display(v, f, lang) for v in value)


def _plain_display(value: Any, f: FieldDef, lang: str) -> str:
    # A system code with labels (a record's business type) reads as its label.
    option = f.option(value) if f.options and isinstance(value, str) else None
    return option.label.get(lang) if option else str(value)


def _date_display(value: Any, f: FieldDef, lang: str) -> str:
    return value.isoformat()


def _datetime_display(value: dt.datetime, f: FieldDef, lang: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _integer_schema(f: FieldDef) -> dict:
    out: dict[str, Any] = {"type": "integer"}
    if f.min_value is not None:
        out["minimum"] = int(f.min_value.to_integral_value(rounding=ROUND_CEILING))
    if f.max_value is not None:
        out["maximum"] = int(f.max_value.to_integral_value(rounding=ROUND_FLOOR))
    return out


def _decimal_schema(f: FieldDef) -> dict:
    """A string (exact decimals); its range is said in words, JSON Schema bounds numbers."""
    words = [f"decimal number with {f.scale} decimals"]
    if f.min_value is not None:
        words.append(f"at least {bound_text(f.min_value)}")
    if f.max_value is not None:
        words.append(f"at most {bound_text(f.max_value)}")
    return {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": ", ".join(words)}


def _string_schema(f: FieldDef) -> dict:
    return {"type": "string", "maxLength": f.max_length or f.kind.default_max_length}


@dataclass(frozen=True)
class FieldType:
    """One entry of the catalogue."""

    name: str
    storage: str  # string | integer | decimal | date | datetime | boolean | json | reference
    coerce: Callable[[Any, FieldDef], Any]
    operators: tuple[str, ...]
    value_schema: Callable[[FieldDef], dict]
    display: Callable[[Any, FieldDef, str], str] = _plain_display
    to_json: Callable[[Any], Any] = _identity
    default_max_length: int | None = None
    default_scale: int = 0
    requires: tuple[str, ...] = ()  # definition keys this type needs (options, target)
    sortable: bool = True
    searchable: bool = False  # can be a keyword-search field
    references: str | None = None  # what the id points at: target, user, department, dimension
    generated: bool = False
    options: bool = False
    computed: bool = False  # formula and roll-up: kept current by the engine, never typed
    # How a value that is not user input is read (a filter value, an audit value, a
    # computed result), where that differs from writing it (generated fields).
    parse: Callable[[Any, FieldDef], Any] | None = None
    # How pages show a value beyond its text: a link ("web" address, "mail" address), an
    # option badge, kept line breaks; and whether a list's totals row sums the column.
    link: str | None = None
    badge: bool = False
    multiline: bool = False
    summed: bool = False

    def read_value(self, value: Any, f: FieldDef) -> Any:
        return (self.parse or self.coerce)(value, f)

    @property
    def numeric(self) -> bool:
        """Numbers: right-aligned in tables."""
        return self.storage in ("integer", "decimal")


def _text_type(name: str, length: int, *, coerce: Callable | None = None, fmt: str | None = None,
               sortable: bool = True, link: str | None = None,
               multiline: bool = False) -> FieldType:
    def schema(f: FieldDef) -> dict:
        out = _string_schema(f)
        if fmt:
            out["format"] = fmt
        return out

    return FieldType(name, "string", coerce or _text, _TEXTUAL, schema,
                     default_max_length=length, searchable=True, sortable=sortable,
                     link=link, multiline=multiline)


def _decimal_type(name: str, scale: int, display: Callable, *, summed: bool = False
                  ) -> FieldType:
    return FieldType(
        name, "decimal", _decimal, _ORDERED, _decimal_schema, display=display,
        to_json=_decimal_json, default_scale=scale, summed=summed, parse=_decimal_number)


_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{2,30}(\s*(ext|x|转)\s*\d{1,6})?")
_URL = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)

FIELD_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        _text_type("text", 255),
        _text_type("textarea", 10000, sortable=False, multiline=True),
        FieldType("integer", "integer", _integer, _ORDERED, _integer_schema,
                  display=_number_display, parse=_whole_number),
        _decimal_type("decimal", 2, _number_display),
        _decimal_type("currency", 2, _currency_display, summed=True),
        _decimal_type("percent", 2, _percent_display),
        FieldType("date", "date", _date, _TEMPORAL,
                  lambda f: {"type": "string", "format": "date"},
                  display=_date_display, to_json=_iso),
        FieldType("datetime", "datetime", _datetime, _TEMPORAL,
                  lambda f: {"type": "string", "format": "date-time"},
                  display=_datetime_display, to_json=_iso),
        FieldType("boolean", "boolean", _boolean, ("eq", "ne", "is_null"),
                  lambda f: {"type": "boolean"}, display=_boolean_display),
        FieldType("select", "string", _select, _EQUALITY,
                  lambda f: {"type": "string", "enum": list(f.option_values)},
                  display=_option_display, requires=("options",), options=True, badge=True),
        FieldType("multiselect", "json", _multiselect, ("contains", "not_contains", "is_null"),
                  lambda f: {"type": "array", "uniqueItems": True,
                             "items": {"type": "string", "enum": list(f.option_values)}},
                  display=_multi_display, requires=("options",), sortable=False, options=True),
        FieldType("lookup", "reference", _reference, _EQUALITY,
                  lambda f: {"type": "integer", "minimum": 1,
                             "description": f"id of a {f.target} record"},
                  requires=("target",), references="target"),
        FieldType("user", "reference", _reference, _EQUALITY,
                  lambda f: {"type": "integer", "minimum": 1, "description": "id of a user"},
                  references="user"),
        FieldType("department", "reference", _reference, _EQUALITY,
                  lambda f: {"type": "integer", "minimum": 1,
                             "description": "id of a department"},
                  references="department"),
        # A record's value in one of the organisation's dimension trees (product line,
        # region…): data permissions intersect the department scope with it.
        FieldType("dimension", "reference", _reference, _EQUALITY,
                  lambda f: {"type": "integer", "minimum": 1,
                             "description": f"id of a node of the {f.dimension} dimension"},
                  requires=("dimension",), references="dimension"),
        _text_type("email", 254, coerce=_pattern_text(_EMAIL, Message("is not a valid email address")),
                   fmt="email", link="mail"),
        _text_type("phone", 40, coerce=_pattern_text(_PHONE, Message("is not a valid phone number"))),
        _text_type("url", 2000, coerce=_pattern_text(
            _URL, Message("is not a valid web address (http:// or https://)")), fmt="uri",
            link="web"),
        FieldType("auto_number", "string", _generated, _TEXTUAL,
                  lambda f: {"type": "string", "readOnly": True},
                  default_max_length=64, searchable=True, generated=True, parse=_text),
        # 省/市/区: a GB/T 2260 code; "within" finds everything inside a province or city.
        FieldType("region", "string", _region, _EQUALITY + ("within",),
                  lambda f: {"type": "string", "pattern": r"^\d{6}$",
                             "description": "administrative division code (GB/T 2260)"},
                  display=_region_display, default_max_length=12),
        # Line items (master-detail): no column; the child records are the value.
        FieldType("lines", "none", _lines, (),
                  lambda f: {"type": "array", "items": {"type": "object"},
                             "description": f"the {f.target} lines of this record"},
                  requires=("target",), references=None, sortable=False),
        # Computed types: their values take the type named by ``returns``; see value_kind.
        FieldType("formula", "decimal", _generated, _ORDERED, lambda f: {"readOnly": True},
                  requires=("expression",), generated=True, computed=True),
        FieldType("rollup", "decimal", _generated, _ORDERED, lambda f: {"readOnly": True},
                  requires=("rollup",), generated=True, computed=True),
    )
}
REGION_LEVELS = {1: "province", 2: "city", 3: "district"}
COMPUTED_RESULT_TYPES = ("text", "integer", "decimal", "currency", "percent", "date",
                         "datetime", "boolean")


@cache
def computed_kind(name: str, returns: str) -> FieldType:
    """A formula or roll-up stores, sorts, filters and shows like its result type, and is
    never written by users."""
    base = FIELD_TYPES[returns]

    def schema(f: FieldDef) -> dict:
        return {**base.value_schema(f), "readOnly": True}

    return replace(base, name=name, coerce=_generated, parse=base.parse or base.coerce,
                   value_schema=schema,
                   requires=FIELD_TYPES[name].requires, generated=True, computed=True)


@dataclass(frozen=True)
class SystemField:
    """A column every object table has, exposed read-only like a field."""

    name: str
    type: str
    label: dict = field(default_factory=dict)
    writable: bool = False


SYSTEM_FIELDS: tuple[SystemField, ...] = (
    SystemField("id", "integer", {"en": "Record ID", "zh": "记录 ID"}),
    SystemField("owner", "user", {"en": "Owner", "zh": "负责人"}, writable=True),
    SystemField("department", "department", {"en": "Department", "zh": "所属部门"}),
    SystemField("business_type", "text", {"en": "Business type", "zh": "业务类型"}, writable=True),
    SystemField("created_at", "datetime", {"en": "Created at", "zh": "创建时间"}),
    SystemField("created_by", "user", {"en": "Created by", "zh": "创建人"}),
    SystemField("updated_at", "datetime", {"en": "Updated at", "zh": "更新时间"}),
    SystemField("updated_by", "user", {"en": "Updated by", "zh": "更新人"}),
    SystemField("version", "integer", {"en": "Version", "zh": "版本"}),
)
# Columns present on every table but never exposed as fields.
HIDDEN_SYSTEM_COLUMNS = ("deleted", "deleted_at", "deleted_by")
SYSTEM_COLUMN_NAMES = frozenset(f.name for f in SYSTEM_FIELDS) | frozenset(HIDDEN_SYSTEM_COLUMNS)
