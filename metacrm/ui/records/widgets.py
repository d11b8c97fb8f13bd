"""The widget catalogue: how each field type is edited in a form and shown on a page.

One entry per field type: the macro that draws the input (templates/macros/widgets.html),
how the submitted form value becomes the value the records service takes, how a stored
value is written back into the input, and what is shown again after a failed save.

A ``lines`` field is edited as a grid of its child records: row inputs are named
``<field>-<row>-<child field>`` (``lines-0-quantity``), an existing line carries a hidden
``<field>-<row>-id``, and a hidden ``<field>-present`` says the grid was on the page, so an
empty grid means "no lines" rather than "leave the lines alone".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dateutil import tz as dateutil_tz
from werkzeug.datastructures import MultiDict

from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import lookup_filters
from metacrm.metadata import regions
from metacrm.metadata.model import BusinessTypeDef, FieldDef, ObjectDef
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import runtime


def user_timezone() -> dt.tzinfo:
    zone = runtime().settings.timezone
    return dateutil_tz.gettz(zone) if zone else dateutil_tz.tzlocal()


# -- from the form ----------------------------------------------------------------------
def _raw(form: MultiDict, f: FieldDef, name: str) -> Any:
    return form.get(name, "")


def _single(form: MultiDict, f: FieldDef, name: str) -> Any:
    return form.get(name, "").strip()


def _many(form: MultiDict, f: FieldDef, name: str) -> Any:
    return [v for v in form.getlist(name) if v]


def _checkbox(form: MultiDict, f: FieldDef, name: str) -> Any:
    # A hidden "false" precedes the checkbox, so the last value is the box's state.
    values = form.getlist(name)
    return values[-1] if values else "false"


def _local_datetime(form: MultiDict, f: FieldDef, name: str) -> Any:
    raw = form.get(name, "").strip()
    if not raw:
        return ""
    try:
        naive = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw  # the records service names the problem
    return naive.replace(tzinfo=user_timezone()).isoformat()


def _region(form: MultiDict, f: FieldDef, name: str) -> Any:
    """The deepest chosen code of the cascade, as long as each choice lies inside the one
    before it (without JavaScript a changed province leaves a stale city behind)."""
    chosen = ""
    for code in (v.strip() for v in form.getlist(name)):
        if not code:
            break
        if chosen and chosen not in {r.code for r in regions.path(code)}:
            break
        chosen = code
    return chosen


# -- into the form ----------------------------------------------------------------------
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
    parse: Callable[[MultiDict, FieldDef, str], Any] = _single
    format: Callable[[Any, FieldDef], Any] = _as_text
    keep: Callable[[MultiDict, FieldDef, str], Any] = _raw  # shown again after a failed save
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
    "boolean": Widget("checkbox", parse=_checkbox, format=_as_bool, keep=_checkbox),
    "select": Widget("select"),
    "multiselect": Widget("multiselect", parse=_many, format=_as_list, keep=_many),
    "lookup": Widget("lookup"),
    "user": Widget("choice"),
    "department": Widget("choice"),
    "dimension": Widget("choice"),
    "email": Widget("input", input_type="email"),
    "phone": Widget("input", input_type="tel"),
    "url": Widget("input", input_type="url"),
    "auto_number": Widget("generated"),
    "region": Widget("region", parse=_region, keep=_region),
    "formula": Widget("computed"),
    "rollup": Widget("computed"),
    "lines": Widget("lines", format=_as_list),
}


READ_ONLY = Widget("read_only")  # a field the user's role may see but not change


def widget(f: FieldDef) -> Widget:
    return WIDGETS[f.type]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


# -- line items -------------------------------------------------------------------------
@dataclass(frozen=True)
class LineColumns:
    """A lines field's grid: the child fields it shows (the master lookup left out) and
    those the user may see but not change."""

    field: FieldDef
    child: str
    columns: tuple[FieldDef, ...]
    locked: frozenset[str] = frozenset()

    def editable(self, c: FieldDef) -> bool:
        return c.writable and c.name not in self.locked


@dataclass
class LineRow:
    """One row of a grid as the inputs show it."""

    id: int | None
    values: dict[str, Any]
    titles: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)  # computed and locked cells, as text

    @property
    def new(self) -> bool:
        return self.id is None

    def show(self, f: FieldDef) -> str:
        return self.shown.get(f.name, "")


@dataclass
class PostedLine:
    id: int | None
    values: dict[str, Any]  # for the records service
    row: LineRow  # for the form, after a failed save


def _row_numbers(form: MultiDict, name: str) -> list[str]:
    """The grid's row numbers in the order the rows were on the page."""
    prefix = f"{name}-"
    seen: dict[str, None] = {}
    for key in form.keys():
        if key.startswith(prefix):
            number, sep, _rest = key[len(prefix):].partition("-")
            if sep and number.isdigit():
                seen.setdefault(number)
    return list(seen)


def _untouched(grid: LineColumns, row: LineRow) -> bool:
    """A new row left as "Add row" made it: nothing typed beyond the defaults."""
    for c in grid.columns:
        if not grid.editable(c):
            continue
        value = row.values.get(c.name)
        default = widget(c).format(c.default, c) if c.default is not None else ""
        if not (_blank(value) or value == default or value == "false"):
            return False
    return True


def posted_lines(form: MultiDict, grid: LineColumns) -> list[PostedLine] | None:
    """The grid's rows as posted, or None if the form had no grid for the field."""
    name = grid.field.name
    if not form.get(f"{name}-present"):
        return None
    out = []
    for number in _row_numbers(form, name):
        prefix = f"{name}-{number}-"
        raw_id = form.get(prefix + "id", "").strip()
        line_id = whole_number(raw_id)
        kept = {c.name: widget(c).keep(form, c, prefix + c.name)
                for c in grid.columns if grid.editable(c)}
        row = LineRow(line_id, kept, titles={
            c.name: form.get(f"{prefix}{c.name}__title", "") for c in grid.columns
            if c.type == "lookup"})
        if line_id is None and _untouched(grid, row):
            continue
        values: dict[str, Any] = {} if line_id is None else {"id": line_id}
        for c in grid.columns:
            if not grid.editable(c):
                continue
            value = widget(c).parse(form, c, prefix + c.name)
            if line_id is None and c.default_expression and _blank(value):
                continue  # the engine evaluates the default
            values[c.name] = value
        out.append(PostedLine(line_id, values, row))
    return out


def line_row(grid: LineColumns, record: Mapping[str, Any], language: str) -> LineRow:
    """A stored line as its grid row shows it."""
    editable = [c for c in grid.columns if grid.editable(c)]
    titles = {c.name: record.get(f"{c.name}__title") or "" for c in grid.columns
              if c.kind.references}
    shown = {c.name: titles.get(c.name) or display(c, record.get(c.name), language)
             for c in grid.columns if not grid.editable(c)}
    return LineRow(record.get("id"), form_values(record, editable), titles, shown)


def blank_row(grid: LineColumns) -> LineRow:
    """What "Add row" adds: the child's defaults (its default expressions are left to
    the engine)."""
    editable = [c for c in grid.columns if grid.editable(c)]
    return LineRow(None, form_values({c.name: c.default for c in editable}, editable))


def line_error_key(name: str, row: int, child: str) -> str:
    """How the records service names an error in a line: ``lines[2].quantity``."""
    return f"{name}[{row}].{child}"


# -- the whole form ---------------------------------------------------------------------
def parse_form(form: MultiDict, fields: list[FieldDef], read_only: frozenset[str] = frozenset(),
               lines: Mapping[str, LineColumns] | None = None, *,
               creating: bool = False) -> dict[str, Any]:
    """The submitted form as the records service takes it. On create, an empty field with
    a default expression is left out, so the engine evaluates the default. A field the
    form shows as text has no input; a request that sends it anyway is the engine's to
    judge (it refuses a changed value)."""
    out: dict[str, Any] = {}
    for f in fields:
        if not f.writable or f.name in read_only:
            if f.name in form and f.type != "lines":
                out[f.name] = widget(f).parse(form, f, f.name)
            continue
        if f.type == "lines":
            grid = (lines or {}).get(f.name)
            posted = posted_lines(form, grid) if grid else None
            if posted is not None:
                out[f.name] = [p.values for p in posted]
            continue
        value = widget(f).parse(form, f, f.name)
        if creating and f.default_expression and _blank(value):
            continue
        out[f.name] = value
    return out


def kept_values(form: MultiDict, fields: list[FieldDef]) -> dict[str, Any]:
    """What the user typed, to show again after a failed save (lines: see posted_lines)."""
    values: dict[str, Any] = {f.name: widget(f).keep(form, f, f.name) for f in fields
                              if f.type != "lines"}
    values["_titles"] = {f.name: form.get(f"{f.name}__title", "") for f in fields
                         if f.type == "lookup"}
    return values


def form_values(row: Mapping[str, Any], fields: list[FieldDef]) -> dict[str, Any]:
    return {f.name: widget(f).format(row.get(f.name), f) for f in fields}


def form_offers(registry: Registry, obj: ObjectDef, bt: BusinessTypeDef | None,
                fields: list[FieldDef], grids: Mapping[str, LineColumns],
                options: Callable[[FieldDef, BusinessTypeDef | None], list],
                sources: Mapping[str, Callable[[FieldDef], Iterable[tuple[int, str]]]]
                ) -> dict[str, dict[str, Any]]:
    """What the form's inputs offer, read before rendering so that drawing the form (a
    grid row after another) runs no SQL: picklist ``options``, the ids a user, department
    or dimension field offers (from ``sources`` by what it references, each source read
    once), and the record fields a lookup's filter reads; each keyed ``<object>.<field>``,
    for the form's fields and its grids' columns."""
    placed = [(obj.name, f) for f in fields] + [
        (grid.child, c) for grid in grids.values() for c in grid.columns]
    read: dict[tuple[str, str | None], list] = {}
    offer: dict[str, dict[str, Any]] = {"options": {}, "choices": {}, "filter_names": {}}
    for object_name, f in placed:
        key = f"{object_name}.{f.name}"
        if f.kind.options:
            offer["options"][key] = options(f, bt)
        if f.kind.references in sources:
            source = (f.kind.references, f.dimension)
            if source not in read:
                read[source] = list(sources[f.kind.references](f))
            offer["choices"][key] = read[source]
        if f.filter:
            offer["filter_names"][key] = lookup_filters.record_names(
                registry, registry.object(object_name), f.name)
    return offer


# -- helpers for the macros -------------------------------------------------------------
def offered(option: Any, control: Any) -> bool:
    """Whether a dependent picklist offers ``option`` while its controlling field holds
    ``control``: options without parents always, the others under one of theirs."""
    return not option.parents or control in option.parents


def region_selects(f: FieldDef, code: str | None) -> list[tuple[list[regions.Region], str]]:
    """The cascade's selects down to the field's level: each one's options and choice."""
    chain = regions.path(code) if code else []
    out = []
    for i in range(f.region_level):
        if i == 0:
            options = regions.children(None)
        elif i <= len(chain):
            options = [r for r in regions.children(chain[i - 1].code)
                       if r.level <= f.region_level]
        else:
            options = []
        out.append((options, chain[i].code if i < len(chain) else ""))
    return out


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
