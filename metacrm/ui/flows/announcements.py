"""The announcements (公告) every user reads: newest first, the unread ones marked, read
one by one or all at once. Expired ones are gone from here (admins still list them)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import login_required

from metacrm.engine.access import users
from metacrm.engine.flows import announcements
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.flows.notifications import when
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import db

bp = Blueprint("announcements", __name__)
PAGE = 100


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


@bp.get("/announcements")
def index():
    session = db()
    found = announcements.for_user(session, actor().user_id, limit=PAGE)
    names = users.display_names(session, {a["created_by"] for a in found
                                          if a["created_by"] is not None})
    return render_template("announcements.html", items=found, names=names, when=when)


@bp.post("/announcements/read")
def mark_read():
    """The one named by ``id``, or all of them."""
    found = whole_number(request.form.get("id", ""))
    with unit_of_work() as session:
        announcements.mark_read(session, actor().user_id, None if found is None else [found])
    return redirect(url_for(".index", _anchor=f"announcement-{found}" if found else None))
