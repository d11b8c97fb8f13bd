"""The admin JSON API under /api/v1/admin: organisation, roles, dimensions, explain.

Super administrators only. Each write is one transaction: committed at the end of the
handler; an error leaves it uncommitted and the request's session rolls it back on
teardown. Engine errors become JSON through ``ui.errors``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for
from flask_babel import force_locale

from metacrm.engine.access import admin, credentials, dimensions, org, roles, user_import
from metacrm.engine.access.permissions import FIELD_ACCESS
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.metadata.messages import Message
from metacrm.ui.admin.dimensions import switch
from metacrm.ui.api.admin_json import (
    USER_FIELDS,
    arg_int,
    created,
    department_json,
    dimension_values,
    no_content,
    only,
    role_json,
    role_names,
    text,
    user_json,
    whole,
)
from metacrm.ui.api.records import current_actor, json_body
from metacrm.ui.errors import ApiError, error_response
from metacrm.ui.i18n import translate
from metacrm.ui.runtime import db, registry

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1/admin")


@bp.before_request
def _super_admin_only() -> None:
    if not current_actor().is_admin:
        raise ApiError(403, "forbidden", Message("only a super administrator may do this"))


# -- users ------------------------------------------------------------------------------
@bp.get("/users")
def list_users():
    active = request.args.get("active", "").lower()
    department = request.args.get("department_id", "")
    flt = admin.UserFilter(
        q=request.args.get("q", "").strip()[:100],
        department_id=int(department) if department.isdigit() else None,
        active={"true": True, "1": True, "false": False, "0": False}.get(active),
        page=arg_int("page") if request.args.get("page") else 1)
    page = admin.list_users(db(), flt)
    return jsonify({"items": [user_json(u) for u in page.items], "total": page.total,
                    "page": page.page, "pages": page.pages})


@bp.post("/users")
def create_user():
    body = json_body()
    only(body, ("username", "password", "display_name", "email", "department_id",
                "superior_id", "language", "roles"))
    values = {k: text(body, k) for k in ("username", "password", "display_name", "email",
                                         "language")}
    values.update(department_id=whole(body, "department_id"),
                  superior_id=whole(body, "superior_id"), roles=role_names(body))
    session = db()
    user_id = admin.create_user(session, values)
    return created(user_json(admin.user_detail(session, user_id)),
                   url_for(".get_user", user_id=user_id))


@bp.get("/users/<int:user_id>")
def get_user(user_id: int):
    return jsonify(user_json(admin.user_detail(db(), user_id)))


@bp.patch("/users/<int:user_id>")
def update_user(user_id: int):
    body = json_body()
    only(body, USER_FIELDS)
    profile: dict[str, Any] = {k: text(body, k) for k in ("display_name", "email", "language")}
    profile["department_id"] = whole(body, "department_id")
    profile["superior_id"] = whole(body, "superior_id")
    profile["clear_superior"] = "superior_id" in body and body["superior_id"] is None
    active = body.get("active")
    if active is not None and not isinstance(active, bool):
        raise ValidationFailed({"active": Message("must be true or false")})
    session = db()
    admin.save_user(session, registry(), user_id, profile=profile,
                    role_names=role_names(body), active=active,
                    dimension_values=dimension_values(body))
    return jsonify(user_json(admin.user_detail(session, user_id)))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    body = json_body()
    org.reset_password(db(), user_id, text(body, "password") or "")
    return no_content()


@bp.post("/users/<int:user_id>/sign-out")
def sign_out_user(user_id: int):
    """Ends every token and browser session of the user (a lost laptop, a leaked token)."""
    org.user_row(db(), user_id)
    return jsonify({"ended": credentials.end_everything(db(), user_id)})


@bp.post("/users/import")
def import_users():
    """CSV in the body; all or nothing, with every problem by line."""
    result = user_import.import_users(db(), admin.decode_csv(request.get_data()))
    if result.errors:
        db().rollback()
        lines = [{"line": line, "fields": {k: str(v) for k, v in problems.items()}}
                 for line, problems in result.errors]
        return error_response(422, "validation_failed", translate(Message(
            "some lines are not valid; nothing was imported")), {}, lines=lines)
    return jsonify({"created": result.created}), 201


# -- departments ------------------------------------------------------------------------
def _department(department_id: int) -> dict[str, Any]:
    found = next((d for d in org.departments(db()) if d.id == department_id), None)
    if found is None:
        raise RecordNotFound(f"department {department_id} not found")
    return department_json(found)


@bp.get("/departments")
def list_departments():
    return jsonify({"items": [department_json(d) for d in org.departments(db())]})


@bp.post("/departments")
def create_department():
    body = json_body()
    only(body, ("name", "parent_id", "head_id"))
    department_id = org.create_department(db(), text(body, "name") or "",
                                          whole(body, "parent_id"), whole(body, "head_id"))
    return created(_department(department_id), url_for(".list_departments"))


@bp.patch("/departments/<int:department_id>")
def update_department(department_id: int):
    body = json_body()
    only(body, ("name", "parent_id", "head_id"))
    org.update_department(db(), department_id, name=text(body, "name"),
                          parent_id=whole(body, "parent_id"), head_id=whole(body, "head_id"),
                          clear_head="head_id" in body and body["head_id"] is None)
    return jsonify(_department(department_id))


@bp.delete("/departments/<int:department_id>")
def delete_department(department_id: int):
    org.delete_department(db(), department_id)
    return no_content()


# -- roles ------------------------------------------------------------------------------
@bp.get("/roles")
def list_roles():
    return jsonify({"items": [role_json(r) for r in roles.all_roles(db())]})


@bp.post("/roles")
def create_role():
    body = json_body()
    only(body, ("name", "label", "description"))
    role_id = roles.create_role(db(), text(body, "name") or "", body.get("label"),
                                description=text(body, "description"))
    return created(role_json(roles.get_role(db(), role_id)),
                   url_for(".get_role", role_id=role_id))


def _grants(role_id: int) -> list[dict[str, str]]:
    return [{"object": o, "operation": op, "scope": scope}
            for (o, op), scope in sorted(roles.grants(db(), role_id).items())]


@bp.get("/roles/<int:role_id>")
def get_role(role_id: int):
    session = db()
    out = role_json(roles.get_role(session, role_id))
    out["grants"] = _grants(role_id)
    out["members_list"] = [{"id": i, "display_name": n}
                           for i, n in roles.members(session, role_id)]
    return jsonify(out)


@bp.patch("/roles/<int:role_id>")
def update_role(role_id: int):
    body = json_body()
    only(body, ("label", "description"))
    roles.update_role(db(), role_id, label=body.get("label"),
                      description=text(body, "description"))
    return jsonify(role_json(roles.get_role(db(), role_id)))


@bp.delete("/roles/<int:role_id>")
def delete_role(role_id: int):
    roles.delete_role(db(), role_id)
    return no_content()


@bp.put("/roles/<int:role_id>/grants")
def put_grants(role_id: int):
    cells = json_body().get("grants")
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and all(isinstance(c.get(k), str)
                                        for k in ("object", "operation", "scope"))
            for c in cells):
        raise ValidationFailed({"grants": Message(
            "must be a list of {object, operation, scope}")})
    roles.get_role(db(), role_id)
    roles.set_grants(db(), role_id, {(c["object"], c["operation"]): c["scope"]
                                     for c in cells}, registry())
    return jsonify({"grants": _grants(role_id)})


def _field_rules(role_id: int, obj) -> dict[str, str]:
    rules = roles.field_rules(db(), role_id, obj.name)
    return {f.name: rules.get(f.name, "editable") for f in obj.active_fields}


@bp.get("/roles/<int:role_id>/fields/<object_name>")
def get_field_rules(role_id: int, object_name: str):
    roles.get_role(db(), role_id)
    obj = registry().object(object_name)
    return jsonify({"object": obj.name, "fields": _field_rules(role_id, obj),
                    "access": list(FIELD_ACCESS)})


@bp.put("/roles/<int:role_id>/fields/<object_name>")
def put_field_rules(role_id: int, object_name: str):
    wanted = json_body().get("fields")
    if not isinstance(wanted, dict):
        raise ValidationFailed({"fields": Message("must map field names to an access")})
    roles.get_role(db(), role_id)
    obj = registry().object(object_name)
    roles.set_field_rules(db(), role_id, obj, wanted)
    return jsonify({"object": obj.name, "fields": _field_rules(role_id, obj)})


# -- dimensions -------------------------------------------------------------------------
def dimension_json(d: dict[str, Any]) -> dict[str, Any]:
    return {"name": d["name"], "label": d["label"],
            "nodes": [{"id": n.id, "name": n.name, "parent_id": n.parent_id, "depth": n.depth}
                      for n in dimensions.nodes(db(), d["name"])],
            "objects": admin.switched_on(registry(), d["name"])}


@bp.get("/dimensions")
def list_dimensions():
    return jsonify({"items": [dimension_json(d) for d in dimensions.all_dimensions(db())]})


@bp.post("/dimensions")
def create_dimension():
    body = json_body()
    only(body, ("name", "label"))
    name = text(body, "name") or ""
    dimensions.create_dimension(db(), name, body.get("label"))
    return created(dimension_json(admin.dimension(db(), name)),
                   url_for(".list_dimensions"))


@bp.post("/dimensions/<name>/nodes")
def add_node(name: str):
    body = json_body()
    only(body, ("parent_id", "name"))
    session = db()
    admin.dimension(session, name)
    parent_id = whole(body, "parent_id")
    if parent_id is None:
        parent_id = dimensions.nodes(session, name)[0].id  # the root
    admin.node_in(session, name, parent_id)
    node_id = dimensions.add_node(session, parent_id, text(body, "name") or "")
    node = next(n for n in dimensions.nodes(session, name) if n.id == node_id)
    return created({"id": node.id, "name": node.name, "parent_id": node.parent_id,
                    "depth": node.depth}, url_for(".list_dimensions"))


@bp.patch("/dimension-nodes/<int:node_id>")
def rename_node(node_id: int):
    body = json_body()
    only(body, ("name",))
    name = text(body, "name") or ""
    dimensions.rename_node(db(), node_id, name)
    return jsonify({"id": node_id, "name": name.strip()})


@bp.delete("/dimension-nodes/<int:node_id>")
def delete_node(node_id: int):
    dimensions.delete_node(db(), node_id)
    return no_content()


@bp.put("/dimensions/<name>/objects/<object_name>")
def switch_object(name: str, object_name: str):
    on = json_body().get("on")
    if not isinstance(on, bool):
        raise ValidationFailed({"on": Message("must be true or false")})
    admin.dimension(db(), name)
    obj = registry().object(object_name)
    version = switch(name, obj, on, current_actor().username)
    return jsonify({"dimension": name, "object": obj.name, "on": on,
                    "field": dimensions.field_name(name), "version": version or None})


# -- explain ----------------------------------------------------------------------------
@bp.get("/explain")
def explain():
    """The verdict, with its reasons in the caller's language."""
    language = current_actor().language
    verdict = admin.explain(db(), registry(), arg_int("user_id"),
                            request.args.get("object", ""), arg_int("record_id"),
                            request.args.get("operation", "read"))
    with force_locale(language):
        reasons = [translate(r) for r in verdict.reasons]
    return jsonify({"allowed": verdict.allowed, "found": verdict.found, "reasons": reasons})
