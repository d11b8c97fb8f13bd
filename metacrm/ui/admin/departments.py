"""Admin screens for the department tree: create, rename, move, set the head, delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.access import org
from metacrm.engine.errors import ValidationFailed
from metacrm.ui.admin.forms import choices, form_int
from metacrm.ui.context import unit_of_work
from metacrm.ui.runtime import db

bp = Blueprint("departments", __name__, url_prefix="/departments")


def render_tree(values: dict[str, Any], errors: dict[str, Any], status: int = 200):
    return render_template("admin/departments.html", values=values, errors=errors,
                           **choices()), status


@bp.get("")
def index():
    return render_tree({"parent_id": org.root_department_id(db())}, {})


@bp.post("")
def create():
    values = {"name": request.form.get("name", ""), "parent_id": form_int("parent_id"),
              "head_id": form_int("head_id")}
    try:
        with unit_of_work():
            org.create_department(db(), values["name"], values["parent_id"], values["head_id"])
    except ValidationFailed as exc:
        return render_tree(values, exc.fields, 422)
    flash(_("Department created."), "success")
    return redirect(url_for(".index"))


def department_or_404(department_id: int) -> org.Department:
    found = next((d for d in org.departments(db()) if d.id == department_id), None)
    if found is None:
        abort(404)
    return found


def render_department(department: org.Department, values: dict[str, Any],
                      errors: dict[str, Any], status: int = 200):
    inside = org.subtree_ids(db(), department.id)
    return render_template("admin/department.html", department=department, values=values,
                           errors=errors, inside=inside, **choices()), status


@bp.route("/<int:department_id>", methods=["GET", "POST"])
def edit(department_id: int):
    department = department_or_404(department_id)
    if request.method == "GET":
        return render_department(department, {"name": department.name,
                                               "parent_id": department.parent_id,
                                               "head_id": department.head_id}, {})
    values = {"name": request.form.get("name", ""), "parent_id": form_int("parent_id"),
              "head_id": form_int("head_id")}
    try:
        with unit_of_work():
            org.update_department(db(), department_id, name=values["name"],
                                  parent_id=values["parent_id"], head_id=values["head_id"],
                                  clear_head=values["head_id"] is None)
    except ValidationFailed as exc:
        return render_department(department, values, exc.fields, 422)
    flash(_("Saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/<int:department_id>/delete")
def delete(department_id: int):
    department = department_or_404(department_id)
    try:
        with unit_of_work():
            org.delete_department(db(), department_id)
    except ValidationFailed as exc:
        values = {"name": department.name, "parent_id": department.parent_id,
                  "head_id": department.head_id}
        return render_department(department, values, exc.fields, 422)
    flash(_("Department deleted."), "success")
    return redirect(url_for(".index"))
