"""The add-field and edit-field forms of the object manager, for every field type.

The type is chosen first; the form then shows that type's settings only (``SETTINGS``).
What the admin typed becomes the raw field definition, and the engine judges it: its
problems are shown next to the inputs they concern, with what was typed kept.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.access import dimensions
from metacrm.metadata import edits
from metacrm.metadata.edits import Draft, EditRefused
from metacrm.metadata.fieldtypes import COMPUTED_RESULT_TYPES, FIELD_TYPES
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.admin import changes as admin_changes
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import db, registry

bp = Blueprint("fields", __name__, url_prefix="/<object_name>/fields")

_VALUE_TYPES = ("text", "textarea", "integer", "decimal", "currency", "percent", "date",
                "datetime", "boolean", "select", "email", "phone", "url", "region")
_SCALAR = (*_VALUE_TYPES, "multiselect", "auto_number", "formula", "rollup")
_TEXTS = ("text", "textarea", "email", "phone", "url")
# Each setting and the types whose form shows it.
SETTINGS: dict[str, tuple[str, ...]] = {
    "required": tuple(t for t in FIELD_TYPES if t not in ("auto_number", "formula",
                                                          "rollup", "lines")),
    "unique": ("text", "email", "phone", "url", "integer", "auto_number"),
    "indexed": tuple(t for t in _SCALAR if t not in ("textarea", "multiselect")),
    "default": (*_VALUE_TYPES, "multiselect"),
    "max_length": _TEXTS,
    "precision": ("decimal", "currency", "percent"),
    "scale": ("decimal", "currency", "percent", "formula", "rollup"),
    "min": ("integer", "decimal", "currency", "percent"),
    "max": ("integer", "decimal", "currency", "percent"),
    "currency_symbol": ("currency",),
    "options": ("select", "multiselect"),
    "depends_on": ("select",),
    "target": ("lookup", "lines"),
    "master": ("lookup",),
    "filter": ("lookup",),
    "via": ("lines",),
    "dimension": ("dimension",),
    "pattern": ("auto_number",),
    "expression": ("formula",),
    "returns": ("formula", "rollup"),
    "rollup": ("rollup",),
    "region_level": ("region",),
}
# The raw keys the form owns; a key the chosen type does not show is removed.
MANAGED = ("type", "label", "help", "required", "unique", "indexed", "default", "max_length",
           "precision", "scale", "min", "max", "currency_symbol", "options", "picklist", "depends_on",
           "target", "master", "filter", "via", "dimension", "pattern", "expression",
           "returns", "rollup", "region_level")
ALWAYS = ("type", "label", "help")
SHOWN_AS = {"picklist": "options"}
ROLLUP_FUNCTIONS = ("count", "sum", "min", "max")


def type_labels() -> dict[str, str]:
    return {"text": _("Text"), "textarea": _("Long text"), "integer": _("Whole number"),
            "decimal": _("Decimal number"), "currency": _("Currency"),
            "percent": _("Percent"), "date": _("Date"), "datetime": _("Date and time"),
            "boolean": _("Yes / no"), "select": _("Picklist"),
            "multiselect": _("Multi-select picklist"), "lookup": _("Lookup"),
            "user": _("User"), "department": _("Department"), "dimension": _("Dimension"),
            "email": _("Email"), "phone": _("Phone"), "url": _("Web address"),
            "auto_number": _("Auto number"), "region": _("Region"),
            "lines": _("Line items"), "formula": _("Formula"), "rollup": _("Roll-up summary")}


def shows(field_type: str, setting: str) -> bool:
    return field_type in SETTINGS.get(setting, ())


def problem_map(problems: list[dict[str, Any]]) -> dict[str, str]:
    """Each problem under the form input it concerns: ``fields[3].options[0].value`` ->
    ``options``; a missing key named in the message (``'label' is a required…``) -> it."""
    out: dict[str, str] = {}
    for p in problems:
        path = re.sub(r"^fields\[\d+\]\.?", "", p["path"])
        key = re.split(r"[.\[]", path)[0] if path else ""
        if not key:
            named = re.search(r"'(\w+)'", p["message"])
            key = named.group(1) if named else "field"
        out.setdefault(key, p["message"])
    return out


# -- form values <-> raw definitions -------------------------------------------------------
def values_of(f: FieldDef) -> dict[str, Any]:
    """An existing field as the form's inputs."""
    v: dict[str, Any] = {"name": f.name, "label_en": f.label.en, "label_zh": f.label.zh,
                         "help_en": f.help.en if f.help else "",
                         "help_zh": f.help.zh if f.help else "",
                         "required": f.required, "unique": f.unique, "indexed": f.indexed,
                         "master": f.master, "max_length": f.max_length or "",
                         "precision": f.precision, "scale": f.scale,
                         "min": "" if f.min_value is None else str(f.min_value),
                         "max": "" if f.max_value is None else str(f.max_value),
                         "currency_symbol": f.currency_symbol,
                         "options_source": "picklist" if f.picklist else "own",
                         "picklist": f.picklist or "",
                         "options": "" if f.picklist else "\n".join(
                             f"{o.value}|{o.label.en}|{o.label.zh}" for o in f.options)}
    for key in ("depends_on", "target", "filter", "via", "dimension", "pattern",
                "expression", "returns"):
        v[key] = getattr(f, key) or ""
    default = f.default
    v["default"] = "" if default is None else (
        ",".join(default) if isinstance(default, list) else
        str(default).lower() if isinstance(default, bool) else str(default))
    v["region_level"] = str(f.region_level)
    if f.rollup:
        v.update({"rollup_object": f.rollup.object, "rollup_via": f.rollup.via,
                  "rollup_function": f.rollup.function, "rollup_field": f.rollup.field or "",
                  "rollup_filter": f.rollup.filter or ""})
    return v


CHECKBOXES = ("required", "unique", "indexed", "master")


def typed_values() -> dict[str, Any]:
    """The form as typed, to build the field from and to show again."""
    v: dict[str, Any] = {k: request.form.get(k, "") for k in request.form if k != "csrf_token"}
    for key in CHECKBOXES:
        v[key] = bool(request.form.get(key))
    return v


def _label(v: dict[str, Any], prefix: str) -> dict[str, str] | None:
    en, zh = v.get(f"{prefix}_en", "").strip(), v.get(f"{prefix}_zh", "").strip()
    return {"en": en, "zh": zh} if en or zh else None


def _number(text: str) -> int | str:
    """A whole number, or the text as typed for the engine to refuse."""
    number = whole_number(text.strip())
    return text.strip() if number is None else number


def _bound(text: str) -> int | float | str:
    """A range bound as a number, or the text as typed for the schema to refuse."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


def _default(field_type: str, text: str) -> Any:
    text = text.strip()
    if field_type == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if field_type == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if field_type == "multiselect":
        return [t.strip() for t in text.split(",") if t.strip()]
    return text


def parse_options(text: str) -> list[dict[str, Any]]:
    """``value|English|中文`` per line; a missing label repeats the one before it."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not parts[0]:
            continue
        en = parts[1] if len(parts) > 1 and parts[1] else parts[0]
        zh = parts[2] if len(parts) > 2 and parts[2] else en
        out.append({"value": parts[0], "label": {"en": en, "zh": zh}})
    return out


def _text_settings(v: dict[str, Any], field_type: str) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key in ("currency_symbol", "depends_on", "target", "filter", "via", "dimension",
                "pattern", "expression", "returns"):
        if shows(field_type, key) and v.get(key, "").strip():
            raw[key] = v[key].strip()
    for key in ("max_length", "precision", "scale", "region_level"):
        if shows(field_type, key) and str(v.get(key, "")).strip():
            raw[key] = _number(str(v[key]))
    for key in ("min", "max"):
        if shows(field_type, key) and str(v.get(key, "")).strip():
            raw[key] = _bound(str(v[key]))
    return raw


def raw_field(v: dict[str, Any], field_type: str) -> dict[str, Any]:
    """The field definition the form describes, with the settings of its type only."""
    raw: dict[str, Any] = {"name": v.get("name", "").strip(), "type": field_type,
                           "label": _label(v, "label"), "help": _label(v, "help")}
    for key in CHECKBOXES:
        if shows(field_type, key) and v.get(key):
            raw[key] = True
    if shows(field_type, "default") and v.get("default", "").strip():
        raw["default"] = _default(field_type, v["default"])
    raw.update(_text_settings(v, field_type))
    if shows(field_type, "options"):
        if v.get("options_source") == "picklist":
            raw["picklist"] = v.get("picklist", "").strip() or None
        else:
            raw["options"] = parse_options(v.get("options", ""))
    if shows(field_type, "rollup"):
        rollup = {k: v.get(f"rollup_{k}", "").strip() for k in
                  ("object", "via", "function", "field", "filter")}
        raw["rollup"] = {k: x for k, x in rollup.items() if x}
    return {k: x for k, x in raw.items() if x is not None and x != default_of(k, raw)}


def default_of(key: str, raw: dict[str, Any]) -> Any:
    """What a missing key means, so that typing the default in changes nothing."""
    kind = FIELD_TYPES.get(raw.get("type", ""))
    if key == "returns" and kind is not None and kind.computed:
        return "integer" if (raw.get("rollup") or {}).get("function") == "count" else "decimal"
    if key == "scale" and kind is not None:
        return FIELD_TYPES[raw.get("returns") or default_of("returns", raw) or "decimal"] \
            .default_scale if kind.computed else kind.default_scale
    return {"required": False, "unique": False, "indexed": False, "master": False,
            "precision": 18, "region_level": 3, "currency_symbol": "¥"}.get(key)


def _raw_of(draft: Draft, object_name: str, name: str) -> dict[str, Any]:
    found = next((f for f in draft.object(object_name)["fields"] if f["name"] == name), None)
    if found is None:
        raise EditRefused("field", Message("object '%(object)s' has no field '%(name)s'",
                                           object=object_name, name=name))
    return found


def change_field(draft: Draft, object_name: str, name: str, new: dict[str, Any]) -> None:
    """Only what differs: the stable key, option colours and the keys the form does not
    show stay as they are (unless the type changes: then the old type's keys go)."""
    current = _raw_of(draft, object_name, name)
    if "options" in new:
        kept = {o["value"]: o for o in current.get("options", [])}
        new = {**new, "options": [{**kept.get(o["value"], {}), **o} for o in new["options"]]}
    retyped = current.get("type") != new["type"]
    changes = {}
    for key in MANAGED:
        if not (retyped or key in ALWAYS or shows(new["type"], SHOWN_AS.get(key, key))):
            continue  # e.g. a lookup's "indexed", which its form does not show
        before = current.get(key, default_of(key, current))
        after = new.get(key, default_of(key, new))
        if key == "default" and not isinstance(before, list | dict):  # 13 in YAML, "13" typed
            before, after = (None if x is None else str(x) for x in (before, after))
        if before != after:
            changes[key] = new.get(key)
    if changes:
        edits.update_field(draft, object_name, name, changes)


# -- pages ------------------------------------------------------------------------------------
def object_or_404(name: str) -> ObjectDef:
    obj = registry().objects.get(name)
    if obj is None or obj.archived:
        abort(404)
    return obj


def render_form(obj: ObjectDef, field_type: str, values: dict[str, Any], *,
                field: FieldDef | None = None, problems: list[dict[str, Any]] | None = None,
                status: int = 200):
    problems = problems or []
    reg = registry()
    return render_template(
        "admin/field_form.html", obj=obj, field=field, field_type=field_type,
        values=values, problems=problems, errors=problem_map(problems), shows=shows,
        type_labels=type_labels(), objects=reg.active_objects,
        picklists=list(reg.picklists.values()), dimensions=dimensions.all_dimensions(db()),
        controlling=[f for f in obj.active_fields if f.type == "select"
                     and (field is None or f.name != field.name)],
        returns_types=COMPUTED_RESULT_TYPES, rollup_functions=ROLLUP_FUNCTIONS), status


@bp.route("/new", methods=["GET", "POST"])
def new(object_name: str):
    obj = object_or_404(object_name)
    field_type = request.values.get("type", "")
    if field_type not in FIELD_TYPES:
        return render_template("admin/field_types.html", obj=obj, type_labels=type_labels())
    if request.method == "GET":
        return render_form(obj, field_type, {"options_source": "own"})
    values = typed_values()
    raw = raw_field(values, field_type)
    failed = admin_changes.submit(
        f"add field {obj.name}.{raw['name']}",
        lambda d: edits.add_field(d, obj.name, raw),
        on_problems=lambda p: render_form(obj, field_type, values, problems=p, status=422),
        title=_("New field"), back=url_for(".new", object_name=obj.name, type=field_type))
    if failed is not None:
        return failed
    flash(_("Field added."), "success")
    return redirect(url_for("admin.objects.detail", object_name=obj.name))


@bp.route("/<field_name>/edit", methods=["GET", "POST"])
def edit(object_name: str, field_name: str):
    obj = object_or_404(object_name)
    field = obj.all_fields.get(field_name)
    if field is None:
        abort(404)
    field_type = request.values.get("type", field.type)
    if field_type not in FIELD_TYPES:
        abort(404)
    if request.method == "GET":
        return render_form(obj, field_type, values_of(field), field=field)
    values = {**typed_values(), "name": field.name}
    raw = raw_field(values, field_type)
    failed = admin_changes.submit(
        f"change field {obj.name}.{field.name}",
        lambda d: change_field(d, obj.name, field.name, raw),
        on_problems=lambda p: render_form(obj, field_type, values, field=field, problems=p,
                                          status=422),
        title=_("Edit field"), back=url_for(".edit", object_name=obj.name,
                                            field_name=field.name))
    if failed is not None:
        return failed
    flash(_("Field saved."), "success")
    return redirect(url_for("admin.objects.detail", object_name=obj.name))
