"""Saving and arranging list views (场景) from the list page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.reading import saved_views
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.input import parse_json
from metacrm.ui.runtime import registry

bp = Blueprint("scenes", __name__)
ACTIONS = {
    "hide": lambda s, a, o, k: saved_views.set_hidden(s, a, o, k, True),
    "show": lambda s, a, o, k: saved_views.set_hidden(s, a, o, k, False),
    "default": saved_views.set_default,
    "left": lambda s, a, o, k: saved_views.move(s, a, o, k, -1),
    "right": lambda s, a, o, k: saved_views.move(s, a, o, k, 1),
    "delete": saved_views.delete_view,
}


@bp.before_request
@login_required
def _signed_in() -> None:
    """Views belong to a signed-in user."""


@bp.post("/o/<object_name>/views")
def save(object_name: str):
    obj = registry().object(object_name)
    try:
        parsed = parse_json(request.form.get("filter") or "null", "filter")
    except ValueError:
        parsed = None
    columns = [c for c in request.form.get("columns", "").split(",") if c in obj.queryable]
    try:
        with unit_of_work() as session:
            key = saved_views.save_view(session, actor(), obj.name,
                                        request.form.get("name", ""), filter=parsed,
                                        columns=columns or None,
                                        sort=request.form.get("sort") or None)
    except ValidationFailed:
        flash(_("The view needs a name of 1 to 60 characters."), "danger")
        return redirect(url_for("pages.list_view", object_name=obj.name))
    flash(_("View saved."), "success")
    return redirect(url_for("pages.list_view", object_name=obj.name, view=key))


@bp.post("/o/<object_name>/views/<key>/<action>")
def arrange(object_name: str, key: str, action: str):
    obj = registry().object(object_name)
    if action not in ACTIONS:
        return redirect(url_for("pages.list_view", object_name=obj.name))
    try:
        with unit_of_work() as session:
            ACTIONS[action](session, actor(), obj.name, key)
    except (RecordNotFound, ValidationFailed):
        flash(_("That view cannot be changed."), "danger")
        return redirect(url_for("pages.list_view", object_name=obj.name))
    target = None if action in ("hide", "delete") else key
    return redirect(url_for("pages.list_view", object_name=obj.name, view=target))
