"""The admin metadata API under /api/v1/admin: objects, fields, picklists, business types,
layouts and versions, changed live.

Super administrators only. Each write is one ``customising.apply`` of an edit from
``metadata.edits``: a new version and its schema change, or nothing. ``?preview=1`` on
any write answers the plan and the diff without keeping anything. A bad edit is 422 with
every problem's path; data in the way is 409 with the records, and the body key
``conversions`` ({field: {action: fill, value} | {action: convert}}) answers it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for

from metacrm.engine import customise
from metacrm.engine.errors import SchemaChangeRefused, ValidationFailed
from metacrm.engine.schema import metastore
from metacrm.engine.schema.schema_sync import Conversion, PlanOptions
from metacrm.metadata import edits
from metacrm.metadata.edits import Draft
from metacrm.metadata.loader import schema_validator
from metacrm.metadata.messages import Message
from metacrm.metadata.settings import SettingDef
from metacrm.ui.admin import customising
from metacrm.ui.api.admin_json import arg_flag, arg_int, created, only, strings
from metacrm.ui.api.records import current_actor, json_body
from metacrm.ui.errors import ApiError, error_response
from metacrm.ui.i18n import translate
from metacrm.ui.runtime import db, registry, runtime

bp = Blueprint("admin_meta_api", __name__, url_prefix="/api/v1/admin")

_DEFS = schema_validator("object").schema["$defs"]
FIELD_KEYS = tuple(_DEFS["field"]["properties"])
OPTION_KEYS = tuple(_DEFS["option"]["properties"])
BUSINESS_TYPE_KEYS = tuple(_DEFS["businessType"]["properties"])
OBJECT_KEYS = ("object", "label", "description", "icon", "group", "features", "title")
LAYOUT_KEYS = ("form", "list")
CONVERSIONS = ("fill", "convert")


@bp.before_request
def _super_admin_only() -> None:
    if not current_actor().is_admin:
        raise ApiError(403, "forbidden", Message("only a super administrator may do this"))


# -- one change, previewed or applied ----------------------------------------------------
def _change(summary: str, edit: customise.Edit, *, options: PlanOptions | None = None,
            location: str | None = None):
    """Apply (or with ?preview=1, preview) one edit; refusals become 409 or 422."""
    preview = arg_flag("preview")
    try:
        outcome = customising.apply(current_actor().username, summary, edit,
                                    options=options, preview=preview)
    except customising.REFUSALS as exc:
        return _refused(exc)
    return _outcome(outcome, preview, location)


def _refused(exc: Exception):
    problems = customising.problems(exc)
    if isinstance(exc, SchemaChangeRefused):
        return error_response(409, exc.code, translate(Message(
            "the change is refused: records are in the way; nothing was changed")),
            problems=problems)
    return error_response(422, "invalid_metadata", translate(Message(
        "the change is not valid; nothing was changed")),
        {p["path"]: p["message"] for p in problems},
                          problems=problems)


def _outcome(outcome: customise.Outcome, preview: bool, location: str | None):
    body: dict[str, Any] = {"version": outcome.version,
                            "changes": outcome.plan.describe(),
                            "diff": [str(line) for line in outcome.diff]}
    if preview:
        refused = outcome.plan.refused
        body = {"preview": True, **body, "refused": customising.problems(
            SchemaChangeRefused(refused)) if refused else []}
        return jsonify(body)
    if location and outcome.version is not None:
        return created(body, location)
    return jsonify(body)


def _options(object_name: str, body: dict[str, Any]) -> PlanOptions | None:
    """The body's ``conversions`` (popped from it) as the plan's options."""
    raw = body.pop("conversions", None)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValidationFailed({"conversions": Message("must map field names to a conversion")})
    conversions = {}
    for field_name, conversion in raw.items():
        if not isinstance(conversion, dict) or conversion.get("action") not in CONVERSIONS \
                or set(conversion) - {"action", "value"}:
            raise ValidationFailed({f"conversions.{field_name}"[:63]: Message(
                "must be {action: fill, value: ...} or {action: convert}")})
        conversions[f"{object_name}.{field_name}"] = Conversion(conversion["action"],
                                                                conversion.get("value"))
    return PlanOptions(conversions=conversions)


# -- objects ------------------------------------------------------------------------------
@bp.get("/objects")
def list_objects():
    return jsonify({"items": [
        {"name": o.name, "label": o.label.as_dict(), "archived": o.archived,
         "fields": len(o.active_fields), "url": url_for(".get_object", object_name=o.name)}
        for o in registry().objects.values()]})


@bp.post("/objects")
def create_object():
    body = json_body()
    only(body, OBJECT_KEYS)
    name = body.get("object")
    return _change(f"create object {name}", lambda d: edits.create_object(d, body),
                   location=url_for(".get_object", object_name=str(name)))


@bp.get("/objects/<object_name>")
def get_object(object_name: str):
    found = Draft(metastore.current_documents(db())).named("object").get(object_name)
    if found is None:
        raise ApiError(404, "not_found", Message("no object named '%(name)s'",
                                                 name=object_name[:63]))
    return jsonify(found)


@bp.patch("/objects/<object_name>")
def update_object(object_name: str):
    body = json_body()
    only(body, edits.OBJECT_SETTINGS)
    return _change(f"change object {object_name}",
                   lambda d: edits.update_object(d, object_name, body))


# -- fields -------------------------------------------------------------------------------
@bp.post("/objects/<object_name>/fields")
def add_field(object_name: str):
    body = json_body()
    options = _options(object_name, body)
    only(body, FIELD_KEYS)
    return _change(f"add field {object_name}.{body.get('name')}",
                   lambda d: edits.add_field(d, object_name, body), options=options,
                   location=url_for(".get_object", object_name=object_name))


@bp.patch("/objects/<object_name>/fields/<field_name>")
def update_field(object_name: str, field_name: str):
    body = json_body()
    options = _options(object_name, body)
    only(body, FIELD_KEYS)
    return _change(f"change field {object_name}.{field_name}",
                   lambda d: edits.update_field(d, object_name, field_name, body),
                   options=options)


@bp.put("/objects/<object_name>/fields/order")
def order_fields(object_name: str):
    body = json_body()
    only(body, ("fields",))
    names = strings(body, "fields")
    return _change(f"reorder the fields of {object_name}",
                   lambda d: edits.order_fields(d, object_name, names))


@bp.post("/objects/<object_name>/fields/<field_name>/archive")
def archive_field(object_name: str, field_name: str):
    return _change(f"archive field {object_name}.{field_name}",
                   lambda d: edits.archive_field(d, object_name, field_name))


@bp.post("/objects/<object_name>/fields/<field_name>/restore")
def restore_field(object_name: str, field_name: str):
    return _change(f"restore field {object_name}.{field_name}",
                   lambda d: edits.restore_field(d, object_name, field_name))


@bp.post("/objects/<object_name>/fields/<field_name>/purge")
def purge_field(object_name: str, field_name: str):
    """Drops the column: the caller confirms with the number of values it holds."""
    body = json_body()
    only(body, ("confirm",))
    f = registry().object(object_name).all_fields.get(field_name)
    values = customise.values_held(db(), registry(), object_name, field_name) \
        if f is not None else 0
    confirm = body.get("confirm")
    # Only an archived field can be purged: the edit itself says so for any other.
    if f is not None and f.archived and (confirm != values or isinstance(confirm, bool)):
        return error_response(409, "confirm_mismatch", translate(Message(
            "purging %(field)s deletes %(count)d value(s); send %(confirm)s",
            field=f"{object_name}.{field_name}", count=values,
            confirm=f'{{"confirm": {values}}}')),
            {"confirm": translate(Message("must be %(count)d", count=values))}, count=values)
    return _change(f"purge field {object_name}.{field_name}",
                   lambda d: edits.purge_field(d, object_name, field_name),
                   options=PlanOptions(purge=frozenset({f"{object_name}.{field_name}"})))


# -- picklists ----------------------------------------------------------------------------
@bp.get("/picklists")
def list_picklists():
    draft = Draft(metastore.current_documents(db()))
    return jsonify({"items": list(draft.named("picklist").values())})


@bp.post("/picklists")
def create_picklist():
    body = json_body()
    only(body, ("name", "label", "options"))
    return _change(f"create picklist {body.get('name')}",
                   lambda d: edits.create_picklist(d, body),
                   location=url_for(".list_picklists"))


@bp.post("/picklists/<name>/options")
def add_option(name: str):
    body = json_body()
    only(body, OPTION_KEYS)
    return _change(f"add option {name}.{body.get('value')}",
                   lambda d: edits.add_option(edits.options_of(d, name), body),
                   location=url_for(".list_picklists"))


@bp.patch("/picklists/<name>/options/<value>")
def update_option(name: str, value: str):
    body = json_body()
    only(body, edits.OPTION_SETTINGS)
    return _change(f"change option {name}.{value}",
                   lambda d: edits.update_option(edits.options_of(d, name), value, body))


@bp.put("/picklists/<name>/options/order")
def order_options(name: str):
    body = json_body()
    only(body, ("values",))
    values = strings(body, "values")
    return _change(f"reorder the options of {name}",
                   lambda d: edits.order_options(edits.options_of(d, name), values))


# -- business types and layouts -----------------------------------------------------------
@bp.put("/objects/<object_name>/business_types/<type_name>")
def put_business_type(object_name: str, type_name: str):
    body = json_body()
    only(body, BUSINESS_TYPE_KEYS)
    if body.setdefault("name", type_name) != type_name:
        raise ValidationFailed({"name": Message("must be the name in the address")})
    return _change(f"set business type {object_name}.{type_name}",
                   lambda d: edits.put_business_type(d, object_name, body))


@bp.delete("/objects/<object_name>/business_types/<type_name>")
def remove_business_type(object_name: str, type_name: str):
    registry().object(object_name)
    used = customise.business_type_in_use(db(), registry(), object_name, type_name)
    if used:
        return error_response(409, "in_use", translate(Message(
            "%(count)d record(s) of %(object)s have business type '%(type)s'; "
            "change them first", count=used, object=object_name, type=type_name)),
            count=used)
    return _change(f"remove business type {object_name}.{type_name}",
                   lambda d: edits.remove_business_type(d, object_name, type_name))


@bp.put("/objects/<object_name>/layouts")
def set_layouts(object_name: str):
    body = json_body()
    only(body, LAYOUT_KEYS)
    return _change(f"change the layouts of {object_name}",
                   lambda d: edits.set_layouts(d, object_name, body))


# -- versions -----------------------------------------------------------------------------
def _version_json(v: customise.VersionInfo) -> dict[str, Any]:
    return {"version": v.version, "created_at": v.created_at.isoformat(), "actor": v.actor,
            "summary": v.summary, "url": url_for(".get_version", version=v.version)}


@bp.get("/versions")
def list_versions():
    limit = min(arg_int("limit"), 200) if request.args.get("limit") else 50
    before = arg_int("before") if request.args.get("before") else None
    found = customise.history(runtime().engine, limit + 1, before)
    return jsonify({"items": [_version_json(v) for v in found[:limit]],
                    "next_before": found[limit - 1].version if len(found) > limit else None})


@bp.get("/versions/<int:version>")
def get_version(version: int):
    engine = runtime().engine
    found = customise.history(engine, 1, version + 1)
    if not found or found[0].version != version:
        raise ApiError(404, "not_found", Message("there is no version %(version)d", version=version))
    return jsonify({**_version_json(found[0]),
                    "diff": [str(line) for line in customise.version_diff(engine, version)]})


@bp.post("/versions/<int:version>/rollback")
def rollback(version: int):
    preview = arg_flag("preview")
    try:
        outcome = customising.rollback(current_actor().username, version, preview=preview)
    except LookupError:
        raise ApiError(404, "not_found", Message("there is no version %(version)d", version=version)) from None
    except customising.REFUSALS as exc:
        return _refused(exc)
    return _outcome(outcome, preview, None)


# -- business settings ----------------------------------------------------------------------
def _setting_json(s: SettingDef) -> dict[str, Any]:
    return {"name": s.name, "type": s.type, "label": s.label.as_dict(),
            "help": s.help.as_dict() if s.help else None,
            "group": s.group.as_dict() if s.group else None,
            "unit": s.unit.as_dict() if s.unit else None,
            "default": s.kind.to_json(s.default), "value": s.kind.to_json(s.value),
            "min": None if s.min is None else str(s.min),
            "max": None if s.max is None else str(s.max),
            "options": [{"value": v, "label": text.as_dict()} for v, text in s.options]}


@bp.get("/settings")
def list_settings():
    return jsonify({"items": [_setting_json(s) for s in registry().settings.values()]})


@bp.patch("/settings")
def change_settings():
    """``{name: value}`` for each setting to change; ``null`` goes back to the default."""
    body = json_body()
    only(body, tuple(registry().settings))
    return _change(f"business settings: {', '.join(body)}",
                   lambda d: edits.set_settings(d, body))
