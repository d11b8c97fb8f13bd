"""Pages that share records: transfer to another owner, team members, export.

Thin handlers over ``engine.transfer``, ``engine.teams`` and ``engine.export``; the
engine decides what the user may do, these only parse forms and redirect.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from metacrm import clock
from metacrm.engine.access import teams
from metacrm.engine.errors import BadQuery, ValidationFailed
from metacrm.engine.flows import transfer as transfers
from metacrm.engine.reading import export as exporter
from metacrm.engine.reading import saved_views
from metacrm.ui.context import actor, page_object_or_404, unit_of_work, visible
from metacrm.ui.i18n import language, translate
from metacrm.ui.input import whole_number
from metacrm.ui.records.listing import list_state
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import db, registry, streamed

bp = Blueprint("sharing", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


def _ids(raw: list[str]) -> list[int]:
    return [n for i in raw if (n := whole_number(i)) is not None]


def _back(object_name: str) -> str:
    return local_target(request.form.get("back"),
                        url_for("pages.list_view", object_name=object_name))


def _flash_errors(exc: ValidationFailed) -> None:
    for message in exc.fields.values():
        flash(translate(message), "danger")


@bp.post("/o/<object_name>/transfer")
def transfer(object_name: str):
    obj = page_object_or_404(object_name)
    owner = request.form.get("owner", "")
    try:
        with unit_of_work() as session:
            result = transfers.transfer(
                session, registry(), actor(), obj, _ids(request.form.getlist("ids")),
                whole_number(owner) or 0,
                old_owner=request.form.get("old_owner", "remove"),
                cascade=request.form.getlist("cascade"))
    except ValidationFailed as exc:
        _flash_errors(exc)
        return redirect(_back(obj.name))
    flash(_("%(count)d record(s) transferred.", count=result.total), "success")
    return redirect(_back(obj.name))



def _detail(object_name: str, record_id: int):
    return redirect(url_for("pages.detail", object_name=object_name, record_id=record_id,
                            _anchor="tab-team"))


@bp.post("/o/<object_name>/<int:record_id>/team")
def add_member(object_name: str, record_id: int):
    obj = page_object_or_404(object_name)
    user = request.form.get("user_id", "")
    until = request.form.get("expires_on", "").strip()
    try:
        expires_on = dt.date.fromisoformat(until) if until else None
    except ValueError:
        flash(_("The end date is not a date."), "danger")
        return _detail(obj.name, record_id)
    try:
        with unit_of_work() as session:
            teams.add_member(session, registry(), actor(), obj, record_id,
                             whole_number(user) or 0,
                             request.form.get("access", "read"), expires_on)
    except ValidationFailed as exc:
        _flash_errors(exc)
        return _detail(obj.name, record_id)
    flash(_("Team member saved."), "success")
    return _detail(obj.name, record_id)


@bp.post("/o/<object_name>/<int:record_id>/team/<int:user_id>/remove")
def remove_member(object_name: str, record_id: int, user_id: int):
    obj = page_object_or_404(object_name)
    with unit_of_work() as session:
        teams.remove_member(session, registry(), actor(), obj, record_id, user_id)
    flash(_("Team member removed."), "success")
    if user_id == actor().user_id:  # left the team: the record may be out of reach now
        return redirect(url_for("pages.list_view", object_name=obj.name))
    return _detail(obj.name, record_id)


@bp.get("/o/<object_name>/export")
def export(object_name: str):
    """The list as shown (view, filter, search, sort, columns) as a file."""
    obj = page_object_or_404(object_name)
    fmt = request.args.get("format", "xlsx")
    if fmt not in exporter.FORMATS:
        fmt = "xlsx"
    state = list_state(obj, saved_views.views_for(db(), actor(), obj.name), visible(obj))
    params = state.params(cursor=None)
    lines = exporter.rows(db(), registry(), obj, params, actor=actor(), language=language())
    try:
        first = next(lines)  # runs the permission check and the query before streaming
    except BadQuery as exc:
        flash(str(exc), "danger")
        return redirect(url_for("pages.list_view", object_name=obj.name))
    stamp = clock.now().astimezone(clock.zone()).strftime("%Y%m%d-%H%M")
    name = f"{obj.name}-{stamp}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}

    def everything():
        yield first
        yield from lines

    if fmt == "csv":
        return streamed(exporter.to_csv(everything()),
                        mimetype="text/csv; charset=utf-8", headers=headers)
    return Response(exporter.to_xlsx(everything(), obj.label.get(language())),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml."
                             "sheet", headers=headers)
