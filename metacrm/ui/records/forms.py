"""A record form as the user meets it: its sections by business type, what each input
offers, the line-item grids, and the rendering of the form with its errors.

Everything a form shows is read here before rendering (templates run no SQL)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _

from metacrm.engine.access import dimensions, org, users
from metacrm.engine.errors import PermissionDenied
from metacrm.engine.reading import query
from metacrm.engine.writing import lines
from metacrm.metadata.flows import StageProcessDef
from metacrm.metadata.model import BusinessTypeDef, FieldDef, ObjectDef
from metacrm.ui.context import (
    actor,
    edit_locked,
    engine_owned,
    on_forms,
    read_only,
    records_page,
    visible,
)
from metacrm.ui.i18n import language
from metacrm.ui.input import whole_number
from metacrm.ui.records import widgets
from metacrm.ui.runtime import db, registry


def form_sections(obj: ObjectDef, bt: BusinessTypeDef | None,
                  shown: dict[str, FieldDef]) -> list[tuple[Any, list[FieldDef]]]:
    """The business type's own sections (else the layout's), limited to its fields and to
    the fields the user may see, in their order; dimension fields the layout does not place
    come first. The type's required fields are marked required."""
    allowed = set(bt.fields) if bt and bt.fields else None
    form = obj.form_of(bt)
    placed = {n for section in form for n in section.fields}
    required = set(bt.required) if bt else set()
    sections = []
    for i, section in enumerate(form):
        names = list(section.fields)
        if i == 0:
            names += [f.name for f in obj.dimension_fields if f.name not in placed]
        fields = [obj.all_fields[n] for n in names
                  if n in shown and n in obj.all_fields and not obj.all_fields[n].archived
                  and (allowed is None or n in allowed)]
        fields = [dataclasses.replace(f, required=True) if f.name in required
                  and not f.required else f for f in fields]
        if fields:
            sections.append((section.label, fields))
    return sections


def _departments() -> list[tuple[int, str]]:
    return [(d.id, "\u3000" * d.depth + d.name) for d in org.departments(db())]


def _dimension_nodes(f: FieldDef) -> list[tuple[int, str]]:
    nodes = dimensions.offered_nodes(db(), actor(), f.dimension)
    return [(n.id, "\u3000" * n.depth + n.name) for n in nodes]


# Where the choices of a field that holds an id (not a record's) come from.
REFERENCE_CHOICES = {
    "user": lambda f: users.active_users(db()),
    "department": lambda f: _departments(),
    "dimension": _dimension_nodes,
}


def options_for(f: FieldDef, bt: BusinessTypeDef | None) -> list:
    allowed = bt.picklists.get(f.name) if bt else None
    return [o for o in f.options if o.active and (allowed is None or o.value in allowed)]


def new_record_process(obj: ObjectDef, bt: BusinessTypeDef | None) -> StageProcessDef | None:
    """The stage process a record the user creates will follow, if any."""
    if not registry().processes_of(obj.name):
        return None
    return registry().process_for(obj.name, bt.name if bt else None, user_departments())


def create_locked(obj: ObjectDef, bt: BusinessTypeDef | None) -> frozenset[str]:
    """What a create form shows as text: read-only fields and the engine's own, but a
    stage field whose process lets the creator choose among start stages."""
    process = new_record_process(obj, bt)
    chosen = {process.field} if process is not None and process.start_stages else set()
    return (read_only(obj) | engine_owned(obj)) - chosen


def starting_values(obj: ObjectDef, bt: BusinessTypeDef | None) -> dict[str, Any]:
    """The stage and win rate a new record starts with, shown on the create form."""
    process = new_record_process(obj, bt)
    if process is None:
        return {}
    out: dict[str, Any] = {process.field: process.first.name}
    if process.win_rate_field:
        out[process.win_rate_field] = process.first.win_rate
    return out


def stage_limited(obj: ObjectDef, bt: BusinessTypeDef | None):
    """``options_for`` on a create form: a stage field offers the stages a new record of
    its process may start in."""
    process = new_record_process(obj, bt)
    if process is None:
        return options_for
    starts = {s.name for s in process.starts}
    return lambda f, bt: [o for o in options_for(f, bt)
                          if f.name != process.field or o.value in starts]


def line_grids(fields: list[FieldDef]) -> dict[str, widgets.LineColumns]:
    """The grid of each lines field: the child's fields the user may see, without its
    master lookup (the parent is the record being edited)."""
    out = {}
    for f in fields:
        if f.type != "lines":
            continue
        child = registry().object(f.target)
        shown = visible(child)
        columns = tuple(c for c in child.active_fields if c.name in shown and not c.master)
        out[f.name] = widgets.LineColumns(f, child.name, columns, read_only(child))
    return out


def reference_titles(f: FieldDef, ids: set[int]) -> dict[int, str]:
    """What the ids a reference field holds are called: record titles, user names…"""
    if not ids:
        return {}
    if f.kind.references == "user":
        return users.display_names(db(), ids)
    if f.kind.references == "department":
        return {d.id: d.name for d in org.departments(db()) if d.id in ids}
    if f.kind.references == "dimension":
        return {n.id: n.name for n in dimensions.nodes(db(), f.dimension) if n.id in ids}
    target = registry().object(f.target)
    wanted, out = sorted(ids), {}
    for i in range(0, len(wanted), query.MAX_PAGE_SIZE):
        try:
            page = records_page(target, query.ListParams(
                filter=[["id", "in", wanted[i:i + query.MAX_PAGE_SIZE]]],
                columns=[target.title_field], page_size=query.MAX_PAGE_SIZE, count="none"))
        except PermissionDenied:
            return out
        out.update({r["id"]: r[target.title_field] for r in page.items})
    return out


def stored_lines(obj: ObjectDef, record_id: int,
                 grids: dict[str, widgets.LineColumns]) -> dict[str, list[dict[str, Any]]]:
    """Each grid's lines of the record, oldest first, with ``<field>__title`` for their
    references."""
    if not grids:
        return {}
    found = lines.read(db(), registry(), obj, [record_id], actor=actor())
    out = {}
    for name, grid in grids.items():
        rows = found.get(name, {}).get(record_id, [])
        for c in grid.columns:
            if c.kind.references:
                titles = reference_titles(c, {r[c.name] for r in rows if r.get(c.name)})
                for r in rows:
                    r[f"{c.name}__title"] = titles.get(r.get(c.name))
        out[name] = rows
    return out


def grid_rows(grids: dict[str, widgets.LineColumns],
              stored: dict[str, list[dict[str, Any]]]) -> dict[str, list[widgets.LineRow]]:
    """The grids' rows: as posted after a failed save, else as stored. A posted line's
    calculated cells still show the stored values."""
    out = {}
    for name, grid in grids.items():
        saved = {r["id"]: widgets.line_row(grid, r, language()) for r in stored.get(name, [])}
        posted = widgets.posted_lines(request.form, grid) if request.method == "POST" else None
        if posted is None:
            out[name] = list(saved.values())
            continue
        for p in posted:
            if p.id in saved:
                p.row.shown = saved[p.id].shown
        out[name] = [p.row for p in posted]
    return out


LINE_ERROR = re.compile(r"(\w+)\[(\d+)\]\.(\w+)")


def error_label(obj: ObjectDef, key: str) -> str:
    """The field an error the form cannot place belongs to, for the list at the top."""
    found = LINE_ERROR.fullmatch(key)
    f = obj.all_fields.get(found[1] if found else key) or obj.queryable.get(key)
    if f is None:
        return key
    if not found or f.type != "lines":
        return f.label.get(language())
    child = registry().object(f.target)
    column = child.all_fields.get(found[3]) or child.queryable.get(found[3])
    return _("%(field)s, row %(row)d: %(column)s", field=f.label.get(language()),
             row=int(found[2]) + 1, column=column.label.get(language()) if column else found[3])


def render_form(obj: ObjectDef, bt: BusinessTypeDef | None, values: dict, errors: dict,
                record: dict | None = None, status: int = 200,
                rows: dict[str, list[widgets.LineRow]] | None = None):
    sections = form_sections(obj, bt, on_forms(obj))
    fields = [f for _, fs in sections for f in fs]
    grids = line_grids(fields)
    rows = rows or {}
    locked = create_locked(obj, bt) if record is None else edit_locked(obj)
    # A field shown as text has no place for an error: its refusal is listed on top.
    placed = {f.name for f in fields if f.writable and f.name not in locked}
    for name, grid in grids.items():
        placed.update(widgets.line_error_key(name, i, c.name)
                      for i in range(len(rows.get(name, []))) for c in grid.columns)
    stray = [(error_label(obj, k), v) for k, v in errors.items()
             if k not in placed and k != "_form"]
    source = record or starting_values(obj, bt)
    for f in fields:  # a dependent picklist's controlling field may be outside the form
        if f.depends_on and f.depends_on not in values:
            values[f.depends_on] = source.get(f.depends_on)

    def shown_value(f: FieldDef) -> str:
        if f.kind.references:
            return source.get(f"{f.name}__title") or ""
        return widgets.display(f, source.get(f.name, f.default), language())

    offer = widgets.form_offers(registry(), obj, bt, fields, grids,
                                stage_limited(obj, bt) if record is None else options_for,
                                REFERENCE_CHOICES)
    return render_template("form.html", obj=obj, bt=bt, sections=sections, values=values,
                           errors=errors, stray_errors=stray, record=record,
                           offer=offer, locked=locked,
                           # generated fields have read-only widgets of their own
                           widget=lambda f: widgets.READ_ONLY if f.name in locked
                           and f.writable else widgets.widget(f),
                           widget_of=widgets.widget, read_only_widget=widgets.READ_ONLY,
                           shown=shown_value, titles=values.get("_titles", {}),
                           grids=grids, rows=rows, blank_row=widgets.blank_row,
                           offered=widgets.offered,
                           region_selects=widgets.region_selects), status


def business_type_for(obj: ObjectDef, name: str | None) -> BusinessTypeDef | None:
    if not obj.business_types:
        return None
    return obj.business_type(name or "") or None


def user_departments() -> set[str]:
    return org.names_upward(db(), actor().department_id)


def offered_types(obj: ObjectDef) -> list[BusinessTypeDef]:
    """The business types the user may create records of: those for one of their
    departments or for every department; an administrator may use them all."""
    if actor().is_admin or not any(bt.departments for bt in obj.business_types):
        return list(obj.business_types)
    held = user_departments()
    return [bt for bt in obj.business_types if bt.offered_to(held)]


def lookup_titles(obj: ObjectDef, values: dict[str, Any]) -> dict[str, str]:
    """Titles of looked-up records named by id, for pre-filled lookup inputs."""
    out = {}
    for name, value in values.items():
        f = obj.all_fields.get(name)
        record_id = whole_number(str(value))
        if f is None or f.type != "lookup" or record_id is None:
            continue
        title = reference_titles(f, {record_id}).get(record_id)
        if title is not None:
            out[name] = title
    return out
