"""The generated pages: list, form, detail and recycle bin of any object.

Thin handlers: parse the request, call the engine, render. Every screen is drawn from
the metadata; nothing here knows a specific object.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from metacrm.engine.access import permissions, teams, users
from metacrm.engine.errors import (
    BadQuery,
    PermissionDenied,
    RecordNotFound,
    StaleVersion,
    ValidationFailed,
)
from metacrm.engine.reading import query, saved_views
from metacrm.engine.writing import records
from metacrm.metadata.model import RECYCLE_BIN_FIELD_DEFS, ObjectDef
from metacrm.ui.context import (
    actor,
    detail_panels,
    edit_locked,
    fetch_or_404,
    may,
    object_or_404,
    on_forms,
    page_object_or_404,
    record_may,
    records_page,
    unit_of_work,
    visible,
)
from metacrm.ui.i18n import language
from metacrm.ui.input import whole_number
from metacrm.ui.records import cells, widgets
from metacrm.ui.records.forms import (
    business_type_for,
    create_locked,
    form_sections,
    grid_rows,
    line_grids,
    lookup_titles,
    offered_types,
    render_form,
    stored_lines,
)
from metacrm.ui.records.history import history_entries
from metacrm.ui.records.listing import (
    PAGE_SIZES,
    filter_operators,
    list_state,
    offered_fields,
)
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import db, registry

bp = Blueprint("pages", __name__)
RELATED_ROWS = 5
RECORD_FACTS = ("owner", "department", "created_at", "updated_at")  # on details


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


def parent_of_line(obj: ObjectDef, record_id: int):
    """A line item's address is its parent's detail page."""
    master = obj.master_field
    if master is None:
        return None
    row = fetch_or_404(obj, record_id, columns=[master.name])
    return redirect(url_for(".detail", object_name=master.target, record_id=row[master.name]))


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
    objects = [o for o in registry().active_objects if o.master_field is None
               and permissions.granted(db(), actor(), o, "read")]
    if not objects:
        return render_template("empty.html")
    return redirect(url_for(".list_view", object_name=objects[0].name))


# -- lists ------------------------------------------------------------------------------
def filterable_fields(obj: ObjectDef) -> list[dict[str, Any]]:
    """What the filter builder offers: each field with its operators and options."""
    out = []
    for f in offered_fields(obj, visible(obj)).values():
        entry = {"name": f.name, "label": f.label.get(language()),
                 "type": f.returns if f.computed else f.type,
                 "operators": list(f.kind.operators)}
        if f.options:
            entry["options"] = [{"value": o.value, "label": o.label.get(language())}
                                for o in f.options if o.active]
        if f.target:
            entry["lookup"] = url_for("api.lookup", object_name=f.target)
        out.append(entry)
    return out


@bp.get("/o/<object_name>")
def list_view(object_name: str):
    obj = page_object_or_404(object_name)
    permissions.require(db(), actor(), obj, "read")
    views = saved_views.views_for(db(), actor(), obj.name)
    fields = offered_fields(obj, visible(obj))
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
    obj = page_object_or_404(object_name)
    ids = [n for i in request.form.getlist("ids") if (n := whole_number(i)) is not None]
    try:
        with unit_of_work() as session:
            for record_id in ids:
                records.delete(session, registry(), obj, record_id, actor=actor())
    except (RecordNotFound, PermissionDenied):
        flash(_("Some records could not be deleted: they are not yours to delete."),
              "warning")
        return redirect(local_target(request.form.get("back"),
                                     url_for(".list_view", object_name=obj.name)))
    flash(_("%(count)d record(s) moved to the recycle bin.", count=len(ids)), "success")
    return redirect(local_target(request.form.get("back"),
                                 url_for(".list_view", object_name=obj.name)))


# -- forms ------------------------------------------------------------------------------


@bp.route("/o/<object_name>/new", methods=["GET", "POST"])
def create(object_name: str):
    obj = page_object_or_404(object_name)
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
    submitted = widgets.parse_form(request.form, fields, create_locked(obj, bt), grids,
                                   creating=True)
    if bt:
        submitted["business_type"] = bt.name
    try:
        with unit_of_work() as session:
            row = records.create(session, registry(), obj, submitted, actor=actor())
    except ValidationFailed as exc:
        kept = widgets.kept_values(request.form, fields)
        return render_form(obj, bt, kept, exc.fields, rows=grid_rows(grids, {}), status=422)
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=row["id"]))


@bp.route("/o/<object_name>/<int:record_id>/edit", methods=["GET", "POST"])
def edit(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    if (parent := parent_of_line(obj, record_id)) is not None:
        return parent
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
    errors: dict[str, Any] = {}
    status = 422
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        # Without the version it was read at, a save would overwrite whatever changed since.
        errors = {"_form": _("This form did not say which version of the record it "
                             "changes. Reload the record and make your change again.")}
    else:
        try:
            with unit_of_work() as session:
                records.update_record(session, registry(), obj, record_id, submitted,
                                      actor=actor(), version=int(version))
        except ValidationFailed as exc:  # PermissionDenied: the 403 page
            errors = dict(exc.fields) or {"_form": str(exc)}
        except StaleVersion:
            errors, status = {"_form": _("Someone else changed this record while you were "
                                         "editing. Reload it to see their change.")}, 409
    if errors:
        kept = widgets.kept_values(request.form, fields)
        rows = grid_rows(grids, stored_lines(obj, record_id, grids))
        return render_form(obj, bt, kept, errors, record=row, rows=rows, status=status)
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=record_id))


# -- detail -----------------------------------------------------------------------------


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


@bp.get("/o/<object_name>/<int:record_id>")
def detail(object_name: str, record_id: int):
    obj = object_or_404(object_name)
    if (parent := parent_of_line(obj, record_id)) is not None:
        return parent
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
                           list_args=request.args.to_dict(),
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


@bp.post("/o/<object_name>/<int:record_id>/delete")
def delete(object_name: str, record_id: int):
    obj = page_object_or_404(object_name)
    with unit_of_work() as session:  # not found: the 404 page
        records.delete(session, registry(), obj, record_id, actor=actor())
    flash(_("Moved to the recycle bin."), "success")
    return redirect(url_for(".list_view", object_name=obj.name))


# -- recycle bin ------------------------------------------------------------------------
@bp.get("/o/<object_name>/recycle-bin")
def recycle_bin(object_name: str):
    obj = page_object_or_404(object_name)
    permissions.require(db(), actor(), obj, "delete")  # restoring undoes a delete
    page_number = max(1, request.args.get("page", 1, type=int))
    cursor = request.args.get("cursor") or None  # the next page: rows after the cursor
    page = records_page(obj, query.ListParams(
        deleted=True, sort="-deleted_at", page=1 if cursor else page_number, cursor=cursor,
        page_size=50, columns=[obj.title_field, "deleted_at", "deleted_by"],
        lookup_titles=True))
    return render_template("recycle_bin.html", obj=obj, page=page, page_number=page_number,
                           deleted_at=RECYCLE_BIN_FIELD_DEFS[0])


@bp.post("/o/<object_name>/<int:record_id>/restore")
def restore(object_name: str, record_id: int):
    obj = page_object_or_404(object_name)
    with unit_of_work() as session:  # not found: the 404 page
        records.restore(session, registry(), obj, record_id, actor=actor())
    flash(_("Restored."), "success")
    return redirect(url_for(".detail", object_name=obj.name, record_id=record_id))
