"""Admin → 公告: publish, correct and delete announcements. Expired ones stay listed here
(marked), hidden from users."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.flows import announcements
from metacrm.metadata.messages import Message
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.flows.notifications import when
from metacrm.ui.records.widgets import user_timezone
from metacrm.ui.runtime import db

bp = Blueprint("announcements", __name__, url_prefix="/announcements")
LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


def _form() -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's values and the expiry, read in the admin's time zone."""
    values = {"title": request.form.get("title", ""), "body": request.form.get("body", ""),
              "expires_at": request.form.get("expires_at", "").strip()}
    errors: dict[str, Any] = {}
    expires = None
    if values["expires_at"]:
        try:
            expires = dt.datetime.fromisoformat(values["expires_at"]) \
                .replace(tzinfo=user_timezone())
        except ValueError:
            errors["expires_at"] = Message("must be a date and time in ISO 8601")
    return {**values, "expires": expires}, errors


def _local(value: dt.datetime | None) -> str:
    return value.astimezone(user_timezone()).strftime(LOCAL) if value else ""


def _render(template: str, values: dict[str, Any], errors: dict[str, Any], status: int = 200,
            **extra: Any):
    return render_template(template, values=values, errors=errors, when=when,
                           now=clock.now(), **extra), status


def _listing(values: dict[str, Any], errors: dict[str, Any], status: int = 200):
    session = db()
    found = announcements.for_admin(session)
    names = users.display_names(session, {a["created_by"] for a in found
                                          if a["created_by"] is not None})
    return _render("admin/announcements.html", values, errors, status, items=found,
                   names=names)


@bp.get("")
def index():
    return _listing({}, {})


@bp.post("")
def create():
    values, errors = _form()
    if errors:
        return _listing(values, errors, 422)
    try:
        with unit_of_work() as session:
            announcements.create(session, actor(), title=values["title"], body=values["body"],
                                 expires_at=values["expires"])
    except ValidationFailed as exc:
        return _listing(values, dict(exc.fields), 422)
    flash(_("Announcement published."), "success")
    return redirect(url_for(".index"))


def _found(announcement_id: int) -> dict[str, Any]:
    try:
        return announcements.get(db(), announcement_id)
    except RecordNotFound:
        abort(404)


@bp.route("/<int:announcement_id>", methods=["GET", "POST"])
def edit(announcement_id: int):
    found = _found(announcement_id)
    if request.method == "GET":
        return _render("admin/announcement.html", {**found, "expires_at": _local(
            found["expires_at"])}, {}, item=found)
    values, errors = _form()
    if errors:
        return _render("admin/announcement.html", values, errors, 422, item=found)
    try:
        with unit_of_work() as session:
            announcements.update_announcement(session, actor(), announcement_id,
                                              title=values["title"], body=values["body"],
                                              expires_at=values["expires"])
    except ValidationFailed as exc:
        return _render("admin/announcement.html", values, dict(exc.fields), 422, item=found)
    flash(_("Saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/<int:announcement_id>/delete")
def delete(announcement_id: int):
    try:
        with unit_of_work() as session:
            announcements.delete_announcement(session, actor(), announcement_id)
    except RecordNotFound:
        abort(404)
    flash(_("Announcement deleted."), "success")
    return redirect(url_for(".index"))
