"""Admin screens for dimension trees: nodes, and switching a dimension on per object."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.engine.access import admin, dimensions
from metacrm.engine.errors import ObjectNotFound, RecordNotFound, ValidationFailed
from metacrm.metadata.model import ObjectDef
from metacrm.ui.admin.forms import form_int
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.runtime import db, registry, runtime

bp = Blueprint("dimensions", __name__, url_prefix="/dimensions")


def switch(dimension: str, obj: ObjectDef, on: bool, actor_name: str) -> int:
    """Add or archive the object's field for the dimension, then make every process see
    the new metadata version. The change runs in a transaction of its own, so the
    request's session lets go of the database first (SQLite holds one writer)."""
    db().commit()
    cache = runtime().registries
    version = dimensions.switch(runtime().engine, obj, dimension, on, actor_name, cache.signal)
    cache.invalidate()
    g.pop("registry", None)
    return version


def dimension_or_404(name: str) -> dict[str, Any]:
    try:
        return admin.dimension(db(), name)
    except RecordNotFound:
        abort(404)


def render_list(values: dict[str, Any], errors: dict[str, Any], status: int = 200):
    return render_template("admin/dimensions.html",
                           trees=dimensions.all_dimensions(db()), values=values,
                           errors=errors), status


@bp.get("")
def index():
    return render_list({}, {})


@bp.post("")
def create():
    values = {"name": request.form.get("name", "").strip(),
              "label": {"en": request.form.get("label_en", ""),
                        "zh": request.form.get("label_zh", "")}}
    try:
        with unit_of_work():
            dimensions.create_dimension(db(), values["name"], values["label"])
    except ValidationFailed as exc:
        return render_list(values, exc.fields, 422)
    flash(_("Dimension created."), "success")
    return redirect(url_for(".detail", name=values["name"]))


def render_tree(tree: dict[str, Any], errors: dict[str, Any] | None = None,
                status: int = 200):
    return render_template("admin/dimension.html", tree=tree,
                           nodes=dimensions.nodes(db(), tree["name"]), errors=errors or {},
                           objects=registry().active_objects,
                           switched=set(admin.switched_on(registry(), tree["name"]))), \
        status


@bp.get("/<name>")
def detail(name: str):
    return render_tree(dimension_or_404(name))


def _node_change(tree: dict[str, Any], change):
    try:
        change()
    except ValidationFailed as exc:
        db().rollback()
        return render_tree(tree, exc.fields, 422)
    except RecordNotFound:
        abort(404)
    db().commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".detail", name=tree["name"]))


@bp.post("/<name>/nodes")
def add_node(name: str):
    tree = dimension_or_404(name)

    def change() -> None:
        parent_id = form_int("parent_id")
        admin.node_in(db(), name, parent_id)
        dimensions.add_node(db(), parent_id, request.form.get("name", ""))

    return _node_change(tree, change)


def _own_node(name: str, node_id: int) -> None:
    if node_id not in {n.id for n in dimensions.nodes(db(), name)}:
        abort(404)


@bp.post("/<name>/nodes/<int:node_id>")
def rename_node(name: str, node_id: int):
    tree = dimension_or_404(name)
    _own_node(name, node_id)
    return _node_change(tree, lambda: dimensions.rename_node(db(), node_id,
                                                             request.form.get("name", "")))


@bp.post("/<name>/nodes/<int:node_id>/delete")
def delete_node(name: str, node_id: int):
    tree = dimension_or_404(name)
    _own_node(name, node_id)
    return _node_change(tree, lambda: dimensions.delete_node(db(), node_id))


@bp.post("/<name>/objects/<object_name>")
def switch_object(name: str, object_name: str):
    tree = dimension_or_404(name)
    try:
        obj = registry().object(object_name)
    except ObjectNotFound:
        abort(404)
    on = request.form.get("on") == "1"
    try:
        switch(name, obj, on, actor().username)
    except ValidationFailed as exc:
        return render_tree(tree, exc.fields, 422)
    flash(_("The dimension is now used by this object.") if on
          else _("The dimension is no longer used by this object."), "success")
    return redirect(url_for(".detail", name=name))
