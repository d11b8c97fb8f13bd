"""The widget catalogue: how each field type is edited in a form and shown on a page.

One entry per field type: the macro that draws the input (templates/macros/widgets.html),
how the submitted form value becomes the value the records service takes, and how a
stored value is written back into the input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dateutil import tz as dateutil_tz
from werkzeug.datastructures import MultiDict

from metacrm.metadata.model import FieldDef
from metacrm.ui.runtime import runtime


def user_timezone() -> dt.tzinfo:
    zone = runtime().settings.timezone
    return dateutil_tz.gettz(zone) if zone else dateutil_tz.tzlocal()


def _single(form: MultiDict, f: FieldDef) -> Any:
    return form.get(f.name, "").strip()


def _many(form: MultiDict, f: FieldDef) -> Any:
    return [v for v in form.getlist(f.name) if v]


def _checkbox(form: MultiDict, f: FieldDef) -> Any:
    # A hidden "false" precedes the checkbox, so the last value is the box's state.
    values = form.getlist(f.name)
    return values[-1] if values else "false"


def _local_datetime(form: MultiDict, f: FieldDef) -> Any:
    raw = form.get(f.name, "").strip()
    if not raw:
        return ""
    try:
        naive = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw  # the records service names the problem
    return naive.replace(tzinfo=user_timezone()).isoformat()


def _as_text(value: Any, f: FieldDef) -> Any:
    return "" if value is None else str(value)


def _as_iso(value: Any, f: FieldDef) -> Any:
    return "" if value is None else value.isoformat()


def _as_local(value: Any, f: FieldDef) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.astimezone(user_timezone()).strftime("%Y-%m-%dT%H:%M")


def _as_list(value: Any, f: FieldDef) -> Any:
    return list(value or [])


def _as_bool(value: Any, f: FieldDef) -> Any:
    return value in (True, "true", "on", "1")


@dataclass(frozen=True)
class Widget:
    macro: str
    parse: Callable[[MultiDict, FieldDef], Any] = _single
    format: Callable[[Any, FieldDef], Any] = _as_text
    input_type: str = "text"
    step: str | None = None


WIDGETS: dict[str, Widget] = {
    "text": Widget("input"),
    "textarea": Widget("textarea"),
    "integer": Widget("input", input_type="number", step="1"),
    "decimal": Widget("input", input_type="number", step="any"),
    "currency": Widget("input", input_type="number", step="0.01"),
    "percent": Widget("input", input_type="number", step="0.01"),
    "date": Widget("input", format=_as_iso, input_type="date"),
    "datetime": Widget("input", parse=_local_datetime, format=_as_local,
                       input_type="datetime-local"),
    "boolean": Widget("checkbox", parse=_checkbox, format=_as_bool),
    "select": Widget("select"),
    "multiselect": Widget("multiselect", parse=_many, format=_as_list),
    "lookup": Widget("lookup"),
    "user": Widget("choice"),
    "department": Widget("choice"),
    "dimension": Widget("choice"),
    "email": Widget("input", input_type="email"),
    "phone": Widget("input", input_type="tel"),
    "url": Widget("input", input_type="url"),
    "auto_number": Widget("generated"),
}


READ_ONLY = Widget("read_only")  # a field the user's role may see but not change


def widget(f: FieldDef) -> Widget:
    return WIDGETS[f.type]


def parse_form(form: MultiDict, fields: list[FieldDef],
               read_only: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {f.name: widget(f).parse(form, f) for f in fields
            if f.writable and f.name not in read_only}


def form_values(row: dict[str, Any], fields: list[FieldDef]) -> dict[str, Any]:
    return {f.name: widget(f).format(row.get(f.name), f) for f in fields}


def display(f: FieldDef, value: Any, language: str) -> str:
    """A stored value as text for a page (Jinja escapes it)."""
    if value is None or value == [] or value == "":
        return ""
    if f.kind.storage == "datetime" and isinstance(value, dt.datetime):
        value = value.astimezone(user_timezone())
    try:
        return f.kind.display(value, f, language)
    except (TypeError, ValueError, AttributeError):
        return str(value)
