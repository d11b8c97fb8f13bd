"""The administration screens under /admin: organisation, roles, dimensions, explain.

One blueprint that lets in signed-in super administrators only; each screen family is
a blueprint of its own nested in it (``admin.users``, ``admin.roles``…), so the check
here guards every one of them.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import login_required

from metacrm.engine.access import admin
from metacrm.engine.access.permissions import OPERATION_LABELS, OPERATIONS
from metacrm.engine.errors import ObjectNotFound, ValidationFailed
from metacrm.ui.admin import announcements as admin_announcements
from metacrm.ui.admin import business_settings as admin_settings
from metacrm.ui.admin import departments as admin_departments
from metacrm.ui.admin import dimensions as admin_dimensions
from metacrm.ui.admin import flows as admin_flows
from metacrm.ui.admin import jobs as admin_jobs
from metacrm.ui.admin import layouts as admin_layouts
from metacrm.ui.admin import objects as admin_objects
from metacrm.ui.admin import picklists as admin_picklists
from metacrm.ui.admin import roles as admin_roles
from metacrm.ui.admin import types as admin_types
from metacrm.ui.admin import users as admin_users
from metacrm.ui.admin import versions as admin_versions
from metacrm.ui.admin.forms import arg_int, choices
from metacrm.ui.context import actor
from metacrm.ui.runtime import db, registry

bp = Blueprint("admin", __name__, url_prefix="/admin")
for child in (admin_users, admin_departments, admin_roles, admin_dimensions, admin_versions,
              admin_objects, admin_types, admin_layouts, admin_picklists, admin_flows,
              admin_settings, admin_announcements, admin_jobs):
    bp.register_blueprint(child.bp)


@bp.before_request
@login_required
def _super_admin_only() -> None:
    """Every admin screen: signed in (else the login page), and a super administrator."""
    if not actor().is_admin:
        abort(403)


@bp.get("/")
def index():
    return redirect(url_for("admin.users.index"))


@bp.get("/explain")
def explain():
    """Why a user may or may not do an operation on one record."""
    asked = {"user_id": arg_int("user_id"), "object": request.args.get("object", ""),
             "record_id": arg_int("record_id"),
             "operation": request.args.get("operation", "read")}
    verdict, errors = None, {}
    if asked["user_id"] and asked["object"] and asked["record_id"]:
        try:
            verdict = admin.explain(db(), registry(), asked["user_id"], asked["object"],
                                    asked["record_id"], asked["operation"])
        except ValidationFailed as exc:
            errors = exc.fields
        except ObjectNotFound:
            abort(404)
    return render_template("admin/explain.html", asked=asked, verdict=verdict, errors=errors,
                           objects=registry().active_objects, operations=OPERATIONS,
                           operation_labels=OPERATION_LABELS, **choices()), \
        422 if errors else 200
