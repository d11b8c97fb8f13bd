"""Business types (业务类型) of an object under /admin/objects/<name>/business-types: their
labels, the departments they are offered to, their fields in order and by section, the
fields they require and the options their picklists offer.

The form's state is one dict (from the type, or as typed); it becomes the raw business
type and ``edits.put_business_type`` applies it through the customisations engine, whose
refusals are shown with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.access import org
from metacrm.engine.errors import ObjectNotFound
from metacrm.metadata import edits
from metacrm.metadata.model import BusinessTypeDef, FieldDef, ObjectDef, SectionDef
from metacrm.ui.admin import customising
from metacrm.ui.context import actor
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import db, registry

bp = Blueprint("business_types", __name__, url_prefix="/objects/<object_name>/business-types")


def object_or_404(name: str) -> ObjectDef:
    try:
        return registry().object(name)
    except ObjectNotFound:
        abort(404)


def type_or_404(obj: ObjectDef, name: str) -> BusinessTypeDef:
    found = obj.business_type(name)
    if found is None:
        abort(404)
    return found


def layout_fields(obj: ObjectDef, form: tuple[SectionDef, ...]) -> list[tuple[FieldDef, int]]:
    """The active fields with the section each is in, in the form's order; fields it does
    not place follow, in its last section."""
    out, placed = [], set()
    for i, section in enumerate(form):
        names = list(section.fields)
        if i == 0:  # as on the form: dimension fields the form does not place come first
            names += [f.name for f in obj.dimension_fields if f.name not in placed_by(form)]
        for name in names:
            f = obj.all_fields.get(name)
            if f is not None and not f.archived and name not in placed:
                out.append((f, i))
                placed.add(name)
    last = max(len(form) - 1, 0)
    out += [(f, last) for f in obj.active_fields if f.name not in placed]
    return out


def placed_by(form: tuple[SectionDef, ...]) -> set[str]:
    return {n for s in form for n in s.fields}


def shown_by_default(obj: ObjectDef, form: tuple[SectionDef, ...]) -> set[str]:
    return placed_by(form) | {f.name for f in obj.dimension_fields}


def fillable(f: FieldDef) -> bool:
    """Whether a field can be required: one the user fills in."""
    return f.stored and not f.kind.generated and not f.system


def state_of(obj: ObjectDef, bt: BusinessTypeDef | None) -> dict[str, Any]:
    """The form's state for a type (None: a new one)."""
    form = obj.form_of(bt)
    used = set(bt.fields) if bt and bt.fields else shown_by_default(obj, form)
    rows = [{"field": f, "use": f.name in used, "section": section, "order": (n + 1) * 10,
             "required": bool(bt and f.name in bt.required)}
            for n, (f, section) in enumerate(layout_fields(obj, form))]
    return {"name": bt.name if bt else "", "label_zh": bt.label.zh if bt else "",
            "label_en": bt.label.en if bt else "",
            "departments": set(bt.departments) if bt else set(), "rows": rows,
            "picks": {name: set(values) for name, values in (bt.picklists if bt else {}).items()}}


def _number(raw: str | None, default: int) -> int:
    value = whole_number((raw or "").strip().lstrip("-"))
    return default if value is None else value


def state_from_form(obj: ObjectDef, bt: BusinessTypeDef | None, name: str) -> dict[str, Any]:
    form = request.form
    sections = obj.form_of(bt)
    rows = []
    for n, (f, section) in enumerate(layout_fields(obj, sections)):
        rows.append({"field": f, "use": bool(form.get(f"use.{f.name}")),
                     "section": min(_number(form.get(f"section.{f.name}"), section),
                                    len(sections) - 1),
                     "order": _number(form.get(f"order.{f.name}"), (n + 1) * 10),
                     "required": bool(form.get(f"required.{f.name}"))})
    return {"name": name, "label_zh": form.get("label_zh", "").strip(),
            "label_en": form.get("label_en", "").strip(),
            "departments": set(form.getlist("departments")), "rows": rows,
            "picks": {f.name: set(form.getlist(f"pick.{f.name}")) for f in obj.active_fields
                      if f.kind.options and form.get(f"picks.{f.name}")}}


def raw_type(obj: ObjectDef, bt: BusinessTypeDef | None, state: dict[str, Any]
             ) -> dict[str, Any]:
    """The business type as metadata: its own form only when it differs from the object's."""
    rows = sorted((r for r in state["rows"] if r["use"]),
                  key=lambda r: (r["section"], r["order"]))
    used = [r["field"].name for r in rows]
    sections = [{"label": section.label.as_dict(), "fields": [
        r["field"].name for r in rows if r["section"] == s]}
        for s, section in enumerate(obj.form_of(bt))]
    sections = [s for s in sections if s["fields"]]
    default_rows = layout_fields(obj, obj.form)
    shown = shown_by_default(obj, obj.form)
    default = [{"label": section.label.as_dict(), "fields": [
        f.name for f, i in default_rows if i == s and f.name in used and f.name in shown]}
        for s, section in enumerate(obj.form)]
    default = [s for s in default if s["fields"]]
    everything = {f.name for f in obj.active_fields}
    picklists = {}
    for r in rows:
        f = r["field"]
        chosen = state["picks"].get(f.name)
        offered = [o.value for o in f.options if o.active]
        if chosen and set(offered) - chosen:
            picklists[f.name] = [v for v in offered if v in chosen]
    label = {"en": state["label_en"], "zh": state["label_zh"]} \
        if state["label_en"] or state["label_zh"] else None
    return {"name": state["name"], "label": label,
            "departments": sorted(state["departments"]),
            "fields": used if set(used) != everything else None,
            "required": [r["field"].name for r in rows if r["required"]
                         and not r["field"].required and fillable(r["field"])],
            "picklists": picklists, "form": sections if sections != default else None}


def render(obj: ObjectDef, state: dict[str, Any], bt: BusinessTypeDef | None,
           problems: list[dict[str, Any]] | None = None, status: int = 200):
    return render_template("admin/business_type.html", obj=obj, state=state, bt=bt,
                           sections=obj.form_of(bt),
                           departments=org.departments(db()), problems=problems or [],
                           fillable=fillable), status


@bp.get("")
def index(object_name: str):
    obj = object_or_404(object_name)
    return render_template("admin/business_types.html", obj=obj)


@bp.route("/new", methods=["GET", "POST"])
def create(object_name: str):
    obj = object_or_404(object_name)
    if request.method == "GET":
        return render(obj, state_of(obj, None), None)
    state = state_from_form(obj, None, request.form.get("name", "").strip())
    if obj.business_type(state["name"]) is not None:
        problems = [{"path": "name", "message": _("A business type with this API name "
                                                  "already exists.")}]
        return render(obj, state, None, problems, 422)
    return save(obj, state, None, _("Business type created."))


@bp.route("/<type_name>", methods=["GET", "POST"])
def edit(object_name: str, type_name: str):
    obj = object_or_404(object_name)
    bt = type_or_404(obj, type_name)
    if request.method == "GET":
        return render(obj, state_of(obj, bt), bt)
    return save(obj, state_from_form(obj, bt, bt.name), bt, _("Saved."))


def save(obj: ObjectDef, state: dict[str, Any], bt: BusinessTypeDef | None, done: str):
    raw = raw_type(obj, bt, state)
    verb = "change" if bt else "add"
    try:
        customising.apply(actor().username, f"{verb} business type {obj.name}.{raw['name']}",
                          lambda draft: edits.put_business_type(draft, obj.name, raw))
    except customising.REFUSALS as exc:
        return render(obj, state, bt, customising.problems(exc), 422)
    flash(done, "success")
    return redirect(url_for(".index", object_name=obj.name))


@bp.post("/<type_name>/remove")
def remove(object_name: str, type_name: str):
    obj = object_or_404(object_name)
    bt = type_or_404(obj, type_name)
    try:
        customising.apply(actor().username, f"remove business type {obj.name}.{bt.name}",
                          lambda draft: edits.remove_business_type(draft, obj.name, bt.name))
    except customising.REFUSALS as exc:
        return render(obj, state_of(obj, bt), bt, customising.problems(exc), 422)
    flash(_("Business type removed."), "success")
    return redirect(url_for(".index", object_name=obj.name))
