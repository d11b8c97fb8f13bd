"""The object manager under /admin/objects: objects, their settings and their fields in
order; archive, restore and purge a field. Every change goes through the customisations
engine (``customising.apply``); the field forms are in ``admin_fields``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine import customise
from metacrm.engine.schema.schema_sync import PlanOptions
from metacrm.metadata import edits
from metacrm.metadata.edits import Draft, EditRefused
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.admin import customising
from metacrm.ui.admin import fields as admin_fields
from metacrm.ui.admin.fields import problem_map, type_labels
from metacrm.ui.context import actor
from metacrm.ui.runtime import db, registry

bp = Blueprint("objects", __name__, url_prefix="/objects")
bp.register_blueprint(admin_fields.bp)

FEATURES = ("owner", "team", "followups", "attachments", "audit", "pool", "dimensions")


def feature_labels() -> dict[str, str]:
    return {"owner": _("Owner"), "team": _("Team"), "followups": _("Follow-ups"),
            "attachments": _("Attachments"), "audit": _("Field history"),
            "pool": _("Public pool"), "dimensions": _("Dimensions")}


def object_or_404(name: str) -> ObjectDef:
    """Archived objects too: the object manager shows them."""
    obj = registry().objects.get(name)
    if obj is None:
        abort(404)
    return obj


def field_or_404(obj: ObjectDef, name: str) -> FieldDef:
    found = obj.all_fields.get(name)
    if found is None:
        abort(404)
    return found


def label_of(prefix: str) -> dict[str, str] | None:
    """``{en, zh}`` from two inputs; None when both are empty (the engine says if needed)."""
    en = request.form.get(f"{prefix}_en", "").strip()
    zh = request.form.get(f"{prefix}_zh", "").strip()
    return {"en": en, "zh": zh} if en or zh else None


def change(summary: str, edit: customise.Edit, **kw) -> list[dict[str, Any]]:
    """Apply a change; the engine's problems, or [] when it is done."""
    try:
        customising.apply(actor().username, summary, edit, **kw)
    except customising.REFUSALS as exc:
        return customising.problems(exc)
    return []


def flash_problems(problems: list[dict[str, Any]]) -> None:
    for p in problems:
        flash(f"{p['path']}: {p['message']}", "danger")


# -- the list and a new object ------------------------------------------------------------
@bp.get("")
def index():
    return render_template("admin/objects.html", objects=list(registry().objects.values()))


def typed_object() -> dict[str, Any]:
    return {"object": request.form.get("object", "").strip(), "label": label_of("label"),
            "icon": request.form.get("icon", "").strip() or None,
            "group": request.form.get("group", "").strip() or None,
            "features": [f for f in FEATURES if request.form.get(f"feature_{f}")],
            "title": {"name": request.form.get("title_name", "").strip() or None,
                      "label": label_of("title_label")}}


def typed_form() -> dict[str, Any]:
    """The form as typed, to show again."""
    return {**request.form, "features": [f for f in FEATURES if request.form.get(f"feature_{f}")],
            "search_fields": request.form.getlist("search_fields")}


def render_new(values: dict[str, Any], problems: list[dict[str, Any]], status: int = 200):
    return render_template("admin/object_new.html", values=values, problems=problems,
                           errors=problem_map(problems), groups=registry().groups,
                           features=FEATURES, feature_labels=feature_labels()), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    if request.method == "GET":
        return render_new({"features": ["owner", "audit"]}, [])
    raw = typed_object()
    problems = change(f"create object {raw['object']}", lambda d: edits.create_object(d, raw))
    if problems:
        return render_new(typed_form(), problems, 422)
    flash(_("Object created. Add its fields below."), "success")
    return redirect(url_for(".detail", object_name=raw["object"]))


# -- one object ---------------------------------------------------------------------------
def settings_of(obj: ObjectDef) -> dict[str, Any]:
    description = obj.description.as_dict() if obj.description else {}
    return {"label_en": obj.label.en, "label_zh": obj.label.zh,
            "description_en": description.get("en", ""),
            "description_zh": description.get("zh", ""), "icon": obj.icon or "",
            "group": obj.group or "", "features": list(obj.features),
            "title_field": obj.title_field, "search_fields": list(obj.search_fields)}


def render_object(obj: ObjectDef, values: dict[str, Any] | None = None,
                  problems: list[dict[str, Any]] | None = None, status: int = 200):
    problems = problems or []
    return render_template(
        "admin/object.html", obj=obj, values=values or settings_of(obj), problems=problems,
        errors=problem_map(problems), groups=registry().groups, features=FEATURES,
        feature_labels=feature_labels(), type_labels=type_labels(),
        title_choices=[f for f in obj.active_fields if f.type == "text"],
        search_choices=[f for f in obj.active_fields if f.kind.searchable]), status


@bp.get("/<object_name>")
def detail(object_name: str):
    return render_object(object_or_404(object_name))


@bp.post("/<object_name>")
def update(object_name: str):
    obj = object_or_404(object_name)
    values = {"label": label_of("label"), "description": label_of("description"),
              "icon": request.form.get("icon", "").strip() or None,
              "group": request.form.get("group", "").strip() or None,
              "features": [f for f in FEATURES if request.form.get(f"feature_{f}")],
              "title_field": request.form.get("title_field", "").strip() or None,
              "search_fields": request.form.getlist("search_fields")}
    problems = change(f"change settings of object {obj.name}",
                      lambda d: edits.update_object(d, obj.name, values))
    if problems:
        return render_object(obj, typed_form(), problems, 422)
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", object_name=obj.name))


def _move(draft: Draft, object_name: str, name: str, step: int) -> None:
    names = [f["name"] for f in draft.object(object_name)["fields"]]
    if name not in names:
        raise EditRefused("field", Message("object '%(object)s' has no field '%(name)s'",
                                           object=object_name, name=name))
    i = names.index(name)
    j = min(max(i + step, 0), len(names) - 1)
    names[i], names[j] = names[j], names[i]
    edits.order_fields(draft, object_name, names)


@bp.post("/<object_name>/fields/<field_name>/move")
def move(object_name: str, field_name: str):
    obj = object_or_404(object_name)
    field_or_404(obj, field_name)
    step = -1 if request.form.get("direction") == "up" else 1
    flash_problems(change(f"move field {obj.name}.{field_name}",
                          lambda d: _move(d, obj.name, field_name, step)))
    return redirect(url_for(".detail", object_name=obj.name) + f"#field-{field_name}")


@bp.post("/<object_name>/fields/<field_name>/archive")
def archive(object_name: str, field_name: str):
    obj = object_or_404(object_name)
    field_or_404(obj, field_name)
    problems = change(f"archive field {obj.name}.{field_name}",
                      lambda d: edits.archive_field(d, obj.name, field_name))
    flash_problems(problems)
    if not problems:
        flash(_("Field archived: it is hidden and its data is kept."), "success")
    return redirect(url_for(".detail", object_name=obj.name))


@bp.post("/<object_name>/fields/<field_name>/restore")
def restore(object_name: str, field_name: str):
    obj = object_or_404(object_name)
    field_or_404(obj, field_name)
    problems = change(f"restore field {obj.name}.{field_name}",
                      lambda d: edits.restore_field(d, obj.name, field_name))
    flash_problems(problems)
    if not problems:
        flash(_("Field restored."), "success")
    return redirect(url_for(".detail", object_name=obj.name))


# -- purge ----------------------------------------------------------------------------------
@bp.route("/<object_name>/fields/<field_name>/purge", methods=["GET", "POST"])
def purge(object_name: str, field_name: str):
    obj = object_or_404(object_name)
    f = field_or_404(obj, field_name)
    if not f.archived:
        flash(_("Only an archived field can be purged; archive it first."), "danger")
        return redirect(url_for(".detail", object_name=obj.name))
    count = customise.values_held(db(), registry(), obj.name, f.name)
    problems: list[dict[str, Any]] = []
    if request.method == "POST":
        if request.form.get("confirm_count", "").strip() != str(count):
            problems = [{"path": "confirm_count",
                         "message": _("Type the number of values that will be lost: %(count)d.",
                                      count=count)}]
        else:
            path = f"{obj.name}.{f.name}"
            problems = change(f"purge field {path}",
                              lambda d: edits.purge_field(d, obj.name, f.name),
                              options=PlanOptions(purge=frozenset({path})))
            if not problems:
                flash(_("Field purged: its column and values are deleted."), "success")
                return redirect(url_for(".detail", object_name=obj.name))
    return render_template("admin/purge.html", obj=obj, field=f, count=count,
                           problems=problems, errors=problem_map(problems)), \
        422 if problems else 200
