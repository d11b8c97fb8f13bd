"""An object's layout under /admin/objects/<name>/layout: the form's sections and the
fields in them, the list's default columns and sort, and the detail page's related lists.

Each part is a form of its own that replaces that part of ``layouts`` (``edits.
set_layout_part``) through the customisations engine; a refusal is shown above the form
it concerns, with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.errors import ObjectNotFound
from metacrm.metadata import edits
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.admin import customising
from metacrm.ui.context import actor
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import registry

bp = Blueprint("layouts", __name__, url_prefix="/objects/<object_name>/layout")
NEW = "new"  # the section select's value for the section being added
PARTS = ("form", "list", "related")


def object_or_404(name: str) -> ObjectDef:
    try:
        return registry().object(name)
    except ObjectNotFound:
        abort(404)


def _number(raw: str | None, default: int) -> int:
    value = whole_number((raw or "").strip())
    return default if value is None else value


# -- state of each form: from the metadata, or as typed ----------------------------------
def form_state(obj: ObjectDef) -> dict[str, Any]:
    where = {n: (s, i) for s, section in enumerate(obj.form)
             for i, n in enumerate(section.fields)}
    return {"sections": [{"zh": s.label.zh, "en": s.label.en, "remove": False}
                         for s in obj.form],
            "new": {"zh": "", "en": ""},
            "rows": [{"field": f, "section": str(where[f.name][0]) if f.name in where else "",
                      "order": (where[f.name][1] + 1) * 10 if f.name in where else 0}
                     for f in obj.active_fields]}


def form_state_typed(obj: ObjectDef) -> dict[str, Any]:
    form = request.form
    count = _number(form.get("sections"), 0)
    return {"sections": [{"zh": form.get(f"s{i}_zh", "").strip(),
                          "en": form.get(f"s{i}_en", "").strip(),
                          "remove": bool(form.get(f"s{i}_remove"))} for i in range(count)],
            "new": {"zh": form.get("new_zh", "").strip(), "en": form.get("new_en", "").strip()},
            "rows": [{"field": f, "section": form.get(f"section.{f.name}", ""),
                      "order": _number(form.get(f"order.{f.name}"), 0)}
                     for f in obj.active_fields]}


def raw_form(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The sections as metadata: removed ones leave (their fields leave the form), the new
    one joins when it has a name; each keeps its fields by order number."""
    sections = [(str(i), s) for i, s in enumerate(state["sections"]) if not s["remove"]]
    if state["new"]["zh"] or state["new"]["en"]:
        sections.append((NEW, state["new"]))
    rows = sorted(state["rows"], key=lambda r: r["order"])
    return [{"label": {"en": s["en"], "zh": s["zh"]},
             "fields": [r["field"].name for r in rows if r["section"] == key]}
            for key, s in sections]


def columns_of(obj: ObjectDef) -> list[FieldDef]:
    """What a list may show: the stored fields and the system fields."""
    return list(obj.queryable.values())


def list_state(obj: ObjectDef) -> dict[str, Any]:
    sort = obj.default_sort.split(",")[0]
    return {"columns": {n: (i + 1) * 10 for i, n in enumerate(obj.list_columns)},
            "sort_field": sort.lstrip("-"), "sort_desc": sort.startswith("-")}


def list_state_typed(obj: ObjectDef) -> dict[str, Any]:
    form = request.form
    return {"columns": {f.name: _number(form.get(f"colorder.{f.name}"), 0)
                        for f in columns_of(obj) if form.get(f"col.{f.name}")},
            "sort_field": form.get("sort_field", ""), "sort_desc": form.get("sort_dir") == "desc"}


def raw_list(state: dict[str, Any]) -> dict[str, Any]:
    columns = sorted(state["columns"], key=lambda n: state["columns"][n])
    out: dict[str, Any] = {"columns": columns}
    if state["sort_field"]:
        out["sort"] = ("-" if state["sort_desc"] else "") + state["sort_field"]
    return out


def candidates(obj: ObjectDef) -> list[tuple[ObjectDef, str]]:
    """The lookups that point at the object, line items aside (shown with their parent)."""
    return [(o, f) for o, f in registry().referrers(obj.name) if not o.all_fields[f].master]


def related_state(obj: ObjectDef) -> dict[str, Any]:
    chosen = obj.related
    if chosen is None:
        return {f"{o.name}.{f}": {"use": True, "order": (i + 1) * 10, "columns": []}
                for i, (o, f) in enumerate(candidates(obj))}
    at = {f"{r.object}.{r.field}": (i, r) for i, r in enumerate(chosen)}
    return {f"{o.name}.{f}": {"use": f"{o.name}.{f}" in at,
                              "order": (at[f"{o.name}.{f}"][0] + 1) * 10
                              if f"{o.name}.{f}" in at else 0,
                              "columns": list(at[f"{o.name}.{f}"][1].columns)
                              if f"{o.name}.{f}" in at else []}
            for o, f in candidates(obj)}


def related_state_typed(obj: ObjectDef) -> dict[str, Any]:
    form = request.form
    return {key: {"use": bool(form.get(f"rel.{key}")),
                  "order": _number(form.get(f"relorder.{key}"), 0),
                  "columns": form.getlist(f"relcols.{key}")}
            for key in (f"{o.name}.{f}" for o, f in candidates(obj))}


def raw_related(obj: ObjectDef, state: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The related lists as metadata; None when they are the default (every lookup)."""
    keys = [f"{o.name}.{f}" for o, f in candidates(obj)]
    chosen = sorted((k for k in keys if state[k]["use"]), key=lambda k: state[k]["order"])
    if chosen == keys and not any(state[k]["columns"] for k in keys):
        return None
    out = []
    for key in chosen:
        other, field_name = key.split(".", 1)
        entry: dict[str, Any] = {"object": other, "field": field_name}
        if state[key]["columns"]:
            entry["columns"] = state[key]["columns"]
        out.append(entry)
    return out


# -- pages ----------------------------------------------------------------------------------
def render(obj: ObjectDef, *, part: str | None = None, problems: list | None = None,
           state: dict[str, Any] | None = None, status: int = 200):
    states = {"form": form_state(obj), "list": list_state(obj),
              "related": related_state(obj)}
    if part is not None and state is not None:
        states[part] = state
    return render_template("admin/layout.html", obj=obj, states=states, part=part,
                           problems=problems or [], columns=columns_of(obj),
                           candidates=candidates(obj), new=NEW), status


@bp.get("")
def edit(object_name: str):
    return render(object_or_404(object_name))


@bp.post("/<part>")
def save(object_name: str, part: str):
    obj = object_or_404(object_name)
    if part not in PARTS:
        abort(404)
    if part == "form":
        state = form_state_typed(obj)
        value: Any = raw_form(state)
    elif part == "list":
        state = list_state_typed(obj)
        value = raw_list(state)
    else:
        state = related_state_typed(obj)
        value = raw_related(obj, state)
    try:
        customising.apply(actor().username, f"change the {part} layout of {obj.name}",
                          lambda draft: edits.set_layout_part(draft, obj.name, part, value))
    except customising.REFUSALS as exc:
        return render(obj, part=part, problems=customising.problems(exc), state=state,
                      status=422)
    flash(_("Layout saved."), "success")
    return redirect(url_for(".edit", object_name=obj.name) + f"#layout-{part}")
