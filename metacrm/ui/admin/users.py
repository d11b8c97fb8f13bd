"""Admin screens for users: list, create, edit, activate, reset password, CSV import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from metacrm.engine.access import admin, credentials, dimensions, org, user_import
from metacrm.engine.errors import ValidationFailed
from metacrm.ui.admin.forms import arg_int, choices, form_int, form_ints
from metacrm.ui.context import unit_of_work
from metacrm.ui.i18n import translate
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import db, registry

bp = Blueprint("users", __name__, url_prefix="/users")
PROFILE = ("display_name", "email", "language")


@bp.get("")
def index():
    active = request.args.get("active", "")
    flt = admin.UserFilter(q=request.args.get("q", "").strip()[:100],
                           department_id=arg_int("department"),
                           active={"1": True, "0": False}.get(active),
                           page=arg_int("page") or 1)
    page = admin.list_users(db(), flt)
    return render_template("admin/users.html", page=page, flt=flt, **choices())


def dimension_trees() -> list[tuple[dict[str, Any], list[dimensions.Node]]]:
    session = db()
    return [(d, dimensions.nodes(session, d["name"])) for d in dimensions.all_dimensions(session)]


def render_user_form(user: dict[str, Any] | None, values: dict[str, Any],
                     errors: dict[str, Any], status: int = 200):
    return render_template("admin/user_form.html", user=user, values=values, errors=errors,
                           trees=dimension_trees(), **choices()), status


def typed_values() -> dict[str, Any]:
    """The form as typed, to show again after a refused save."""
    values: dict[str, Any] = {k: request.form.get(k, "") for k in
                              ("username", "display_name", "email", "language")}
    values["department_id"] = form_int("department_id")
    values["superior_id"] = form_int("superior_id")
    values["roles"] = request.form.getlist("roles")
    values["dimensions"] = {d["name"]: form_ints(f"dim.{d['name']}")
                            for d in dimensions.all_dimensions(db())}
    return values


@bp.route("/new", methods=["GET", "POST"])
def create():
    if request.method == "GET":
        return render_user_form(None, {"roles": [org.DEFAULT_ROLE], "language": "zh"}, {})
    values = typed_values()
    try:
        with unit_of_work():
            user_id = admin.create_user(db(), {**values,
                                               "password": request.form.get("password", "")})
    except ValidationFailed as exc:
        return render_user_form(None, values, exc.fields, 422)
    flash(_("User created."), "success")
    return redirect(url_for(".edit", user_id=user_id))


@bp.route("/<int:user_id>", methods=["GET", "POST"])
def edit(user_id: int):
    session = db()
    user = admin.user_detail(session, user_id)
    if request.method == "GET":
        values = {**user, "roles": [r["name"] for r in user["roles"]]}
        return render_user_form(user, values, {})
    values = typed_values()
    profile: dict[str, Any] = {k: values[k] for k in PROFILE}
    profile["language"] = values["language"] or None
    profile["department_id"] = values["department_id"]
    profile["superior_id"] = values["superior_id"]
    profile["clear_superior"] = values["superior_id"] is None
    try:
        with unit_of_work():
            admin.save_user(session, registry(), user_id, profile=profile,
                            role_names=values["roles"],
                            dimension_values=values["dimensions"])
    except ValidationFailed as exc:
        return render_user_form(user, values, exc.fields, 422)
    flash(_("Saved."), "success")
    return redirect(url_for(".edit", user_id=user_id))


def refused(exc: ValidationFailed) -> None:
    db().rollback()
    for message in exc.fields.values():
        flash(translate(message), "danger")


@bp.post("/<int:user_id>/active")
def set_active(user_id: int):
    active = request.form.get("active") == "1"
    try:
        org.set_active(db(), user_id, active)
    except ValidationFailed as exc:
        refused(exc)
    else:
        db().commit()
        flash(_("The user can sign in again.") if active
              else _("The user is disabled and can no longer sign in."), "success")
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/<int:user_id>/password")
def reset_password(user_id: int):
    try:
        org.reset_password(db(), user_id, request.form.get("password", ""))
    except ValidationFailed as exc:
        refused(exc)
    else:
        db().commit()
        flash(_("The password was changed."), "success")
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/<int:user_id>/sign-out")
def sign_out(user_id: int):
    """Ends every browser session and API token of the user (a lost laptop, a leaked
    token); the password stays, so the user can sign in again."""
    user = org.user_row(db(), user_id)
    credentials.end_everything(db(), user_id)
    db().commit()
    if user_id == current_user.actor.user_id:  # this browser's session is gone too
        return redirect(url_for("auth.login"))
    flash(_("%(name)s is signed out on every device.", name=user.display_name
            or user.username), "success")
    return redirect(local_target(request.form.get("back"), url_for(".index")))


@bp.route("/import", methods=["GET", "POST"])
def import_csv():
    """All or nothing: any line with a problem and no user is created."""
    if request.method == "GET":
        return render_template("admin/import.html", columns=user_import.IMPORT_COLUMNS)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("admin/import.html", columns=user_import.IMPORT_COLUMNS,
                               file_error=_("Choose a CSV file to upload.")), 422
    try:
        result = user_import.import_users(db(), admin.decode_csv(upload.read()))
    except ValidationFailed as exc:
        db().rollback()
        return render_template("admin/import.html", columns=user_import.IMPORT_COLUMNS,
                               file_error=translate(next(iter(exc.fields.values())))), 422
    if result.errors:
        db().rollback()
        return render_template("admin/import.html", columns=user_import.IMPORT_COLUMNS,
                               line_errors=result.errors), 422
    db().commit()
    return render_template("admin/import.html", columns=user_import.IMPORT_COLUMNS,
                           created=result.created)


@bp.get("/import/template.csv")
def import_template():
    return Response(admin.import_template(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=users.csv"})

