"""The generated pages: list, form, detail and recycle bin of any object.

Thin handlers: parse the request, call the engine, render. Every screen is drawn from
the metadata; nothing here knows a specific object.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from metacrm.engine import audit
from metacrm.engine.access import dimensions, org, permissions, teams, users
from metacrm.engine.errors import (
    BadQuery,
    ObjectNotFound,
    PermissionDenied,
    RecordNotFound,
    StaleVersion,
    ValidationFailed,
)
from metacrm.engine.flows import stages
from metacrm.engine.reading import query, saved_views
from metacrm.engine.writing import lines, lookup_filters, records
from metacrm.metadata import regions
from metacrm.metadata.model import BusinessTypeDef, FieldDef, ObjectDef
from metacrm.ui.context import actor, detail_panels
from metacrm.ui.i18n import language
from metacrm.ui.records import cells, widgets
from metacrm.ui.records.listing import PAGE_SIZES, filter_operators, list_state
from metacrm.ui.runtime import db, registry

bp = Blueprint("pages", __name__)
RELATED_ROWS = 5
RECORD_FACTS = ("owner", "department", "created_at", "updated_at", "version")  # on details


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


def may(obj: ObjectDef) -> dict[str, bool]:
    """What the user's roles allow on the object: which buttons a page offers."""
    return {op: permissions.granted(db(), actor(), obj, op) for op in permissions.OPERATIONS}


def visible(obj: ObjectDef) -> dict[str, FieldDef]:
    """The fields the user may see (hidden ones are absent everywhere)."""
    return permissions.visible_fields(db(), actor(), obj)


def on_forms(obj: ObjectDef) -> dict[str, FieldDef]:
    """The fields forms and detail pages may show: the visible ones and the line items
    (which have no column, so lists and filters never name them)."""
    hidden = permissions.hidden_fields(db(), actor(), obj)
    return {**visible(obj), **{f.name: f for f in obj.line_fields if f.name not in hidden}}


def read_only(obj: ObjectDef) -> frozenset[str]:
    return frozenset(n for n, a in permissions.field_access(db(), actor(), obj).items()
                     if a == "read_only")


def edit_locked(obj: ObjectDef) -> frozenset[str]:
    """What an edit form shows as text: read-only fields, and the stage fields (a record
    moves along its stage path, not in the form)."""
    return read_only(obj) | stages.managed_fields(registry(), obj)


def records_page(obj: ObjectDef, params: query.ListParams, **kw: Any) -> query.Page:
    """A page of records as the signed-in user may see them."""
    return query.list_records(db(), registry(), obj, params, actor=actor(), **kw)


def object_or_404(name: str) -> ObjectDef:
    try:
        return registry().object(name)
    except ObjectNotFound:
        abort(404)


def fetch_or_404(obj: ObjectDef, record_id: int, **params: Any) -> dict[str, Any]:
    """One record with its lookups' titles, through the same compiler as lists."""
    page = records_page(obj, query.ListParams(
        filter=[["id", "eq", record_id]], lookup_titles=True, count="none", **params))
    if not page.items:
        abort(404)
    return page.items[0]


@bp.app_context_processor
def _navigation() -> dict[str, Any]:
    if not current_user or not current_user.is_authenticated:
        return {}
    reg = registry()
    # Line items (a master-detail child) are edited and shown with their parent.
    readable = [o for o in reg.active_objects if o.master_field is None
                and permissions.granted(db(), actor(), o, "read")]
    groups = [(g, [o for o in readable if o.group == g.name]) for g in reg.groups]
    ungrouped = [o for o in readable if o.group not in {g.name for g in reg.groups}]
    return {"nav_groups": [(g, objs) for g, objs in groups if objs], "nav_other": ungrouped,
            "display": lambda f, v: widgets.display(f, v, language())}


@bp.get("/")
def home():
    objects = [o for o in registry().active_objects
               if permissions.granted(db(), actor(), o, "read")]
    if not objects:
        return render_template("empty.html")
    return redirect(url_for(".list_view", object_name=objects[0].name))


# -- lists ------------------------------------------------------------------------------
def filterable_fields(obj: ObjectDef) -> list[dict[str, Any]]:
    """What the filter builder offers: each field with its operators and options."""
    out = []
    for f in visible(obj).values():
        entry = {"name": f.name, "label": f.label.get(language()),
                 "type": f.returns if f.computed else f.type,
                 "operators": list(f.kind.operators)}
        if f.options:
            entry["options"] = [{"value": o.value, "label": o.label.get(language())}
                                for o in f.options if o.active]
        if f.target:
            entry["lookup"] = url_for(".lookup", object_name=f.target)
        out.append(entry)
    return out


@bp.get("/o/<object_name>")
def list_view(object_name: str):
    obj = object_or_404(object_name)
    permissions.require(db(), actor(), obj, "read")
    views = saved_views.views_for(db(), actor(), obj.name)
    fields = visible(obj)
    state = list_state(obj, views, fields)
    try:
        page = records_page(obj, state.params())
        sums = query.totals(db(), registry(), obj, state.params(),
                            cells.summed(state.column_fields), actor=actor())
    except BadQuery as exc:
        state.problems.append(str(exc))
        state.filter, state.sort, state.cursor = state.view.filter, obj.default_sort, None
        page = records_page(obj, state.params())
        sums = {}
    return render_template("list.html", obj=obj, state=state, page=page, sums=sums,
                           rows=cells.list_rows(obj, state.column_fields, page.items, state.args()),
                           fields=filterable_fields(obj), operators=filter_operators(),
                           page_sizes=PAGE_SIZES,
                           all_columns=list(fields.values()), may=may(obj),
                           transfer=transfer_choices(obj))


def transfer_choices(obj: ObjectDef) -> dict[str, Any]:
    """What the transfer form offers: new owners and the related lists that may follow."""
    return {"owners": users.active_users(db()),
            "cascade": [(o, o.all_fields[f]) for o, f in registry().referrers(obj.name)
                        if permissions.granted(db(), actor(), o, "transfer")]}


@bp.post("/o/<object_name>/bulk-delete")
def bulk_delete(object_name: str):
    obj = object_or_404(object_name)
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    session = db()
    for record_id in ids:
        try:
            records.delete(session, registry(), obj, record_id, actor=actor())
        except (RecordNotFound, PermissionDenied):
            session.rollback()
            flash(_("Some records could not be deleted: they are not yours to delete."),
                  "warning")
            return redirect(request.form.get("back") or url_for(".list_view",
                                                                object_name=obj.name))
    session.commit()
    flash(_("%(count)d record(s) moved to the recycle bin.", count=len(ids)), "success")
    return redirect(request.form.get("back") or url_for(".list_view", object_name=obj.name))


@bp.get("/o/<object_name>/lookup")
def lookup(object_name: str):
    """Type-ahead candidates: matches over the target's search fields, narrowed by the
    lookup's filter when ``field=<object>.<field>`` names it, given the edited record's
    values as ``record[<field>]=<value>``."""
    obj = object_or_404(object_name)
    extra = candidates_filter(obj)
    page = records_page(obj, query.ListParams(
        q=request.args.get("q", "")[:100] or None, columns=[obj.title_field], page_size=10,
        count="none", sort=obj.title_field), **({} if extra is None else {"extra": extra}))
    return jsonify([{"id": r["id"], "title": r[obj.title_field]} for r in page.items])


def candidates_filter(target: ObjectDef):
    """The lookup filter of the field the type-ahead serves, as a condition on ``target``."""
    source_name, _, field_name = request.args.get("field", "").partition(".")
    if not field_name:
        return None
    source = object_or_404(source_name)
    f = source.all_fields.get(field_name)
    if f is None or f.target != target.name:
        abort(400)
    record = {k[7:-1]: v for k, v in request.args.items()
              if k.startswith("record[") and k.endswith("]")}
    return lookup_filters.candidates_condition(registry(), source, f.name, record)


@bp.get("/regions/children", defaults={"code": None})
@bp.get("/regions/<code>/children")
def region_children(code: str | None):
    """The regions under a province or city (the provinces without a code): the region
    widget's next select."""
    if code is not None and regions.region(code) is None:
        abort(404)
    return jsonify([{"code": r.code, "name": r.name, "level": r.level}
                    for r in regions.children(code)])


# -- forms ------------------------------------------------------------------------------
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


def stage_limited(obj: ObjectDef, bt: BusinessTypeDef | None):
    """``options_for`` on a create form: a stage field offers the open stages of the
    process the new record will follow."""
    process = registry().process_for(obj.name, bt.name if bt else None, user_departments()) \
        if registry().processes_of(obj.name) else None
    if process is None:
        return options_for
    open_stages = {s.name for s in process.open_stages}
    return lambda f, bt: [o for o in options_for(f, bt)
                          if f.name != process.field or o.value in open_stages]


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
    placed = {f.name for f in fields}
    for name, grid in grids.items():
        placed.update(widgets.line_error_key(name, i, c.name)
                      for i in range(len(rows.get(name, []))) for c in grid.columns)
    stray = [(error_label(obj, k), v) for k, v in errors.items()
             if k not in placed and k != "_form"]
    locked = read_only(obj) if record is None else edit_locked(obj)
    source = record or {}
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
                           widget=lambda f: widgets.READ_ONLY if f.name in locked
                           else widgets.widget(f),
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


@bp.route("/o/<object_name>/new", methods=["GET", "POST"])
def create(object_name: str):
    obj = object_or_404(object_name)
    permissions.require(db(), actor(), obj, "create")
    chosen = request.values.get("business_type")
    offered = offered_types(obj)
    if obj.business_types and not offered:
        abort(403)
    bt = business_type_for(obj, chosen)
    refused = bt is not None and bt not in offered
    if refused or (len(offered) > 1 and bt is None):
        args = {k: v for k, v in request.args.items() if k != "business_type"}
        message = _("Your department may not create records of the business type "
                    "%(type)s.", type=bt.label.get(language())) if refused and bt else None
        status = 403 if refused and request.method == "POST" else 200
        return render_template("choose_type.html", obj=obj, types=offered, args=args,
                               refused=message), status
    bt = bt or (offered[0] if offered else None)
    fields = [f for _, fs in form_sections(obj, bt, on_forms(obj)) for f in fs]
    if request.method == "GET":
        defaults = {f.name: f.default for f in fields if f.default is not None}
        prefill = {f.name: request.args[f.name] for f in fields if request.args.get(f.name)}
        titles = lookup_titles(obj, prefill)
        return render_form(obj, bt, {**widgets.form_values(defaults, fields), **prefill,
                                     "_titles": titles}, {})
    grids = line_grids(fields)
    submitted = widgets.parse_form(request.form, fields, read_only(obj), grids, creating=True)
    if bt:
        submitted["business_type"] = bt.name
    try:
        row = records.create(db(), registry(), obj, submitted, actor=actor())
    except ValidationFailed as exc:
        db().rollback()
        kept = widgets.kept_values(request.form, fields)
        return render_form(obj, bt, kept, exc.fields, rows=grid_rows(grids, {}), status=422)
    db().commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=row["id"]))


def lookup_titles(obj: ObjectDef, values: dict[str, Any]) -> dict[str, str]:
    """Titles of looked-up records named by id, for pre-filled lookup inputs."""
    out = {}
    for name, value in values.items():
        f = obj.all_fields.get(name)
        if f is None or f.type != "lookup" or not str(value).isdigit():
            continue
        title = reference_titles(f, {int(value)}).get(int(value))
        if title is not None:
            out[name] = title
    return out


@bp.route("/o/<object_name>/<int:record_id>/edit", methods=["GET", "POST"])
def edit(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    row = fetch_or_404(obj, record_id)
    if not record_may(obj, record_id, ("edit",))["edit"]:
        abort(403)
    bt = business_type_for(obj, row.get("business_type"))
    fields = [f for _, fs in form_sections(obj, bt, on_forms(obj)) for f in fs]
    grids = line_grids(fields)
    titles = {k[:-7]: v for k, v in row.items() if k.endswith("__title") and v}
    if request.method == "GET":
        values = {**widgets.form_values(row, fields), "_titles": titles}
        rows = grid_rows(grids, stored_lines(obj, record_id, grids))
        return render_form(obj, bt, values, {}, record=row, rows=rows)
    submitted = widgets.parse_form(request.form, fields, edit_locked(obj), grids)
    version = request.form.get("version", "")
    try:
        records.update_record(db(), registry(), obj, record_id, submitted, actor=actor(),
                              version=int(version) if version.isdigit() else None)
    except (ValidationFailed, StaleVersion) as exc:  # PermissionDenied: the 403 page
        db().rollback()
        errors = exc.fields if isinstance(exc, ValidationFailed) else {
            "_form": _("Someone else changed this record while you were editing. "
                       "Reload it to see their change.")}
        kept = widgets.kept_values(request.form, fields)
        rows = grid_rows(grids, stored_lines(obj, record_id, grids))
        return render_form(obj, bt, kept, errors, record=row, rows=rows,
                           status=409 if isinstance(exc, StaleVersion) else 422)
    db().commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=record_id))


# -- detail -----------------------------------------------------------------------------
def record_may(obj: ObjectDef, record_id: int, operations: tuple[str, ...]) -> dict[str, bool]:
    return permissions.record_operations(db(), actor(), obj, registry().table(obj), record_id,
                                         operations)


def related_specs(obj: ObjectDef) -> list[tuple[ObjectDef, str, tuple[str, ...]]]:
    """(object, lookup, columns) of each related list: the layout's, in its order, else
    every object looking this one up with its list columns."""
    if obj.related is None:
        return [(other, name, ()) for other, name in registry().referrers(obj.name)]
    out = []
    for spec in obj.related:
        other = registry().objects.get(spec.object)
        f = other.all_fields.get(spec.field) if other is not None else None
        if other is None or other.archived or f is None or f.archived:
            continue  # archived since the layout named it
        out.append((other, spec.field, spec.columns))
    return out


def related_lists(obj: ObjectDef, record_id: int) -> list[dict[str, Any]]:
    out = []
    for other, field_name, chosen in related_specs(obj):
        if other.all_fields[field_name].master:
            continue  # line items: the record's own lines table shows them
        if not permissions.can(db(), actor(), other, "read"):
            continue
        shown = visible(other)
        columns = [c for c in chosen if c in shown] if chosen else \
            [c for c in other.list_columns if c != field_name and c in shown][:4]
        page = records_page(other, query.ListParams(
            filter=[[field_name, "eq", record_id]], columns=columns, page_size=RELATED_ROWS,
            lookup_titles=True))
        fields = [other.queryable[c] for c in columns]
        shown_cells = [f for f in fields if f.name != other.title_field]
        out.append({"obj": other, "field": other.all_fields[field_name], "page": page,
                    "may_create": permissions.granted(db(), actor(), other, "create"),
                    "columns": fields,
                    "rows": [(r, cells.row_cells(shown_cells, r, language()))
                             for r in page.items]})
    return out


def history_entries(obj: ObjectDef, record_id: int) -> list[dict[str, Any]]:
    entries = audit.history(db(), obj.name, record_id, limit=100)
    hidden = permissions.hidden_fields(db(), actor(), obj)
    fields = obj.queryable | obj.all_fields
    people = {e["actor_id"] for e in entries if e["actor_id"]}
    for entry in entries:
        for name, change in entry["changes"].items():
            f = fields.get(name)
            if f is not None and f.kind.references == "user":
                people.update(v for v in change if isinstance(v, int))
            elif name == "team":
                people.update(v["user"] for v in change if isinstance(v, dict))
    names = users.display_names(db(), people)
    for entry in entries:
        entry["actor"] = names.get(entry["actor_id"], _("System"))
        entry["rows"], entry["note"] = [], ""
        for name, (before, after) in entry["changes"].items():
            f = fields.get(name)
            if name == "team":
                entry["note"] = team_note(before, after, names)
            elif name not in hidden and f is not None and f.kind.references == "user":
                entry["rows"].append((f, names.get(before, before), names.get(after, after)))
            elif name not in hidden:
                entry["rows"].append((f, before, after))
    return entries


def team_note(before: dict | None, after: dict | None, names: dict[int, str]) -> str:
    if after:
        access = _("read and write") if after.get("access") == "write" else _("read only")
        return _("%(user)s added (%(access)s)", user=names.get(after["user"], after["user"]),
                 access=access)
    return _("%(user)s removed", user=names.get(before["user"], before["user"]))


@bp.get("/o/<object_name>/<int:record_id>")
def detail(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    row = fetch_or_404(obj, record_id)
    bt = business_type_for(obj, row.get("business_type"))
    neighbours = (None, None)
    if request.args.get("view") or request.args.get("filter") or request.args.get("sort"):
        state = list_state(obj, saved_views.views_for(db(), actor(), obj.name), visible(obj))
        try:
            neighbours = query.neighbours(db(), registry(), obj, state.params(), row,
                                              actor=actor())
        except BadQuery:
            pass
    shown = visible(obj)
    header = [shown[c] for c in obj.list_columns if c in shown and c != obj.title_field][:4]
    allowed = record_may(obj, record_id, ("edit", "delete", "transfer"))
    sections = form_sections(obj, bt, on_forms(obj))
    grids = line_grids([f for _, fs in sections for f in fs])
    lang = language()
    lines_cells = {name: [cells.labelled_cells(grids[name].columns, r, lang) for r in rows]
                   for name, rows in stored_lines(obj, record_id, grids).items()}
    system = [obj.queryable[n] for n in RECORD_FACTS]
    return render_template("detail.html", obj=obj, row=row, bt=bt,
                           header=cells.labelled_cells(header, row, lang),
                           sections=[(label, cells.labelled_cells(fs, row, lang))
                                     for label, fs in sections],
                           system=cells.labelled_cells(system, row, lang),
                           grids=grids, lines=lines_cells,
                           related=related_lists(obj, record_id),
                           history=history_entries(obj, record_id), neighbours=neighbours,
                           list_args=request.args.to_dict(), change_value=change_value,
                           allowed=allowed, team=team_panel(obj, record_id),
                           transfer=transfer_choices(obj) if allowed["transfer"] else None,
                           panels={name: build(obj, row) for name, build in
                                   detail_panels().items()})


def team_panel(obj: ObjectDef, record_id: int) -> dict[str, Any] | None:
    if "team" not in obj.features:
        return None
    return {"members": teams.members(db(), registry(), actor(), obj, record_id),
            "manage": teams.may_manage(db(), registry(), actor(), obj, record_id),
            "users": users.active_users(db())}


def change_value(f: FieldDef | None, value: Any) -> str:
    """An audit value (as stored in JSON) shown like the field shows it."""
    if value is None or f is None:
        return "—" if value is None else str(value)
    try:
        value = f.kind.read_value(value, f)  # a formula's reads like its result type's
    except ValueError:
        return str(value)
    return widgets.display(f, value, language()) or "—"


@bp.post("/o/<object_name>/<int:record_id>/delete")
def delete(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    records.delete(db(), registry(), obj, record_id, actor=actor())  # not found: the 404 page
    db().commit()
    flash(_("Moved to the recycle bin."), "success")
    return redirect(url_for(".list_view", object_name=obj.name))


# -- recycle bin ------------------------------------------------------------------------
@bp.get("/o/<object_name>/recycle-bin")
def recycle_bin(object_name: str):
    obj = object_or_404(object_name)
    permissions.require(db(), actor(), obj, "delete")  # restoring undoes a delete
    page_number = max(1, request.args.get("page", 1, type=int))
    page = records_page(obj, query.ListParams(
        deleted=True, sort="-updated_at", page=page_number, page_size=50,
        columns=[obj.title_field, "updated_at", "owner"]))
    return render_template("recycle_bin.html", obj=obj, page=page)


@bp.post("/o/<object_name>/<int:record_id>/restore")
def restore(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    records.restore(db(), registry(), obj, record_id, actor=actor())  # not found: the 404 page
    db().commit()
    flash(_("Restored."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=record_id))
