"""Admin screens for roles: the grants grid, field access per object, members."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.access import admin, roles
from metacrm.engine.access.permissions import (
    ALL_OBJECTS,
    FIELD_ACCESS,
    OPERATION_LABELS,
    OPERATIONS,
    SCOPES,
)
from metacrm.engine.errors import ObjectNotFound, RecordNotFound, ValidationFailed
from metacrm.metadata.model import ObjectDef
from metacrm.ui.admin.forms import form_int
from metacrm.ui.context import unit_of_work
from metacrm.ui.runtime import db, registry

bp = Blueprint("roles", __name__, url_prefix="/roles")


def typed_role() -> dict[str, Any]:
    return {"name": request.form.get("name", "").strip(),
            "label": {"en": request.form.get("label_en", ""),
                      "zh": request.form.get("label_zh", "")},
            "description": request.form.get("description", "")}


@bp.get("")
def index():
    return render_template("admin/roles.html", all_roles=roles.all_roles(db()), values={},
                           errors={})


@bp.post("")
def create():
    values = typed_role()
    try:
        with unit_of_work():
            role_id = roles.create_role(db(), values["name"], values["label"],
                                        description=values["description"].strip() or None)
    except ValidationFailed as exc:
        return render_template("admin/roles.html", all_roles=roles.all_roles(db()),
                               values=values, errors=exc.fields), 422
    flash(_("Role created."), "success")
    return redirect(url_for(".detail", role_id=role_id))


def role_or_404(role_id: int) -> roles.Role:
    try:
        return roles.get_role(db(), role_id)
    except RecordNotFound:
        abort(404)


def render_role(role: roles.Role, errors: dict[str, Any] | None = None,
                values: dict[str, Any] | None = None, grid: dict | None = None,
                status: int = 200):
    session = db()
    return render_template(
        "admin/role.html", role=role, errors=errors or {},
        values=values or {"label": role.label, "description": role.description or ""},
        grid=grid if grid is not None else roles.grants(session, role.id),
        members=roles.members(session, role.id), users=admin.all_users(session),
        rows=[(ALL_OBJECTS, None), *((o.name, o.label) for o in registry().active_objects)],
        all_objects=ALL_OBJECTS, operations=OPERATIONS,
        operation_labels=OPERATION_LABELS, scopes=SCOPES), status


@bp.get("/<int:role_id>")
def detail(role_id: int):
    return render_role(role_or_404(role_id))


@bp.post("/<int:role_id>")
def update(role_id: int):
    role = role_or_404(role_id)
    if role.is_super:
        abort(403)
    values = typed_role()
    try:
        with unit_of_work():
            roles.update_role(db(), role_id, label=values["label"],
                              description=values["description"])
    except ValidationFailed as exc:
        return render_role(role, exc.fields, values, status=422)
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", role_id=role_id))


@bp.post("/<int:role_id>/grants")
def save_grants(role_id: int):
    """The grid as submitted: an empty cell of an object row falls back to the '*' row."""
    role = role_or_404(role_id)
    shown = [ALL_OBJECTS, *(o.name for o in registry().active_objects)]
    wanted = {}
    for object_name in shown:
        for operation in OPERATIONS:
            scope = request.form.get(f"g.{object_name}.{operation}", "")
            if scope:
                wanted[(object_name, operation)] = scope
    session = db()
    try:
        with unit_of_work():
            roles.set_grants(session, role_id, admin.merged_grants(
                roles.grants(session, role_id), set(shown), wanted), registry())
    except ValidationFailed as exc:
        return render_role(role, exc.fields, grid=wanted, status=422)
    flash(_("Permissions saved."), "success")
    return redirect(url_for(".detail", role_id=role_id))


def object_or_404(name: str) -> ObjectDef:
    try:
        return registry().object(name)
    except ObjectNotFound:
        abort(404)


@bp.route("/<int:role_id>/fields/<object_name>", methods=["GET", "POST"])
def fields(role_id: int, object_name: str):
    role, obj = role_or_404(role_id), object_or_404(object_name)
    session = db()
    current = roles.field_rules(session, role_id, obj.name)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        if role.is_super:
            abort(403)
        shown = {f.name for f in obj.active_fields}
        wanted = {name: request.form.get(f"f.{name}", "editable") for name in shown}
        try:
            roles.set_field_rules(session, role_id, obj,
                                  admin.merged_field_rules(current, shown, wanted))
        except ValidationFailed as exc:
            session.rollback()
            errors, current = exc.fields, wanted
        else:
            session.commit()
            flash(_("Field permissions saved."), "success")
            return redirect(url_for(".fields", role_id=role_id, object_name=obj.name))
    return render_template("admin/role_fields.html", role=role, obj=obj, rules=current,
                           errors=errors, access=FIELD_ACCESS), 422 if errors else 200


@bp.post("/<int:role_id>/members")
def add_member(role_id: int):
    role = role_or_404(role_id)
    user_id = form_int("user_id")
    if user_id is None:
        return redirect(url_for(".detail", role_id=role_id))
    return _change_members(role, lambda: admin.add_member(db(), role.name, user_id))


@bp.post("/<int:role_id>/members/<int:user_id>/remove")
def remove_member(role_id: int, user_id: int):
    role = role_or_404(role_id)
    return _change_members(role, lambda: admin.remove_member(db(), role.name, user_id))


def _change_members(role: roles.Role, change):
    try:
        change()
    except ValidationFailed as exc:
        db().rollback()
        return render_role(role, exc.fields, status=422)
    except RecordNotFound:
        abort(404)
    db().commit()
    flash(_("Members saved."), "success")
    return redirect(url_for(".detail", role_id=role.id))


@bp.post("/<int:role_id>/delete")
def delete(role_id: int):
    role = role_or_404(role_id)
    try:
        with unit_of_work():
            roles.delete_role(db(), role_id)
    except ValidationFailed as exc:
        return render_role(role, exc.fields, status=422)
    flash(_("Role deleted."), "success")
    return redirect(url_for(".index"))
