"""The todo centre (待办), and the navigation's counts of todos, approvals and unread
notifications and announcements."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from metacrm import clock
from metacrm.engine.flows import approvals, todo_kinds, todos
from metacrm.engine.flows.stages import stage_label
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.flows.notifications import names_of, object_label, when
from metacrm.ui.i18n import label
from metacrm.ui.input import whole_number
from metacrm.ui.runtime import db, registry

bp = Blueprint("todo", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


@bp.app_context_processor
def _badges() -> dict[str, Any]:
    """The navigation's counts, one statement per request, for signed-in users only."""
    if not current_user or not current_user.is_authenticated:
        return {}
    if "badges" not in g:
        g.badges = todo_kinds.badges(db(), registry(), actor())
    return {"badges": g.badges}



# -- the todo centre ----------------------------------------------------------------------
LEGACY_TABS = {"handled": ("assigned", "handled")}  # the page's old "handled" tab
MAX_OFFSET = 10**9  # as the API's cursor: a larger one would overflow the SQL LIMIT
SCENE = re.compile(r"[a-z_]{1,30}")


def _stage_work(item: Mapping[str, Any]) -> dict[str, str]:
    """The stage's and the work item's labels, from the process the todo names."""
    reg = registry()
    process = reg.stage_processes.get((item["params"] or {}).get("process", ""))
    stage = process.stage(item["stage"]) if process else None
    obj = reg.objects.get(item["object"])
    if stage is None or obj is None:
        return {"stage": item["stage"] or "", "item": item["item"] or ""}
    work = stage.work_item(item["item"] or "")
    return {"stage": label(stage_label(process, obj, stage)),
            "item": label(work.label) if work else item["item"] or ""}


def _due(item: dict[str, Any]) -> None:
    """The due day in the instance's zone, the days left (negative: overdue) and the text."""
    due = item.get("due")
    if due is None:
        item["due_text"], item["days"] = "", None
        return
    day = due.astimezone(clock.zone()).date() if isinstance(due, dt.datetime) else due
    item["due_text"] = when(due) if isinstance(due, dt.datetime) else due.isoformat()
    item["days"] = (day - clock.today()).days
    item["overdue"] = item.get("handled_at") is None and (
        due < clock.now() if isinstance(due, dt.datetime) else day < clock.today())


def _decorate(items: list[dict[str, Any]]) -> None:
    """Titles, object labels, names and due days: one statement per object, one for
    the names, whatever the number of items."""
    session, reg = db(), registry()
    titles = approvals.titles(session, reg, [i for i in items if "title" not in i])
    names = names_of([i.get("owner") for i in items] + [i.get("submitter_id") for i in items] +
                   [(i.get("params") or {}).get("by") for i in items])
    for item in items:
        if "title" not in item or item["title"] is None:
            item["title"] = titles.get((item["object"], item["record_id"])) or \
                f"#{item['record_id']}"
        item["object_label"] = object_label(item["object"])
        item["owner_name"] = names.get(item.get("owner") or 0, "")
        item["submitter"] = names.get(item.get("submitter_id") or 0, "")
        item["by"] = names.get((item.get("params") or {}).get("by") or 0, "")
        _due(item)
        if "flow" in item:
            flow = reg.approval_flows.get(item["flow"])
            item["flow_label"] = label(flow.label) if flow else item["flow"]
            item["step_label"] = label(flow.steps[item["step"]].label) \
                if flow and 0 <= item["step"] < len(flow.steps) else ""
        if item.get("kind") == "stage_work":
            item.update(_stage_work(item))


def _choice() -> tuple[str, str, str]:
    """The kind (``tab``), scene and whose todos the request asks for."""
    tab, scene = request.args.get("tab", ""), request.args.get("scene", "")
    if tab in LEGACY_TABS:
        tab, scene = LEGACY_TABS[tab]
    return tab, scene, request.args.get("user", "")


def _kind_or_404(name: str) -> todo_kinds.TodoKind:
    found = todo_kinds.catalogue(registry()).get(name)
    if found is None:
        abort(404)
    return found


def _people(session: Any) -> list[tuple[int, str]]:
    """The viewer's subordinates, for the "whose todos" choice (empty for a rep)."""
    me = actor().user_id
    ids = [i for i in todo_kinds.whose(session, actor(), "all") if i != me]
    names = names_of(ids)
    return sorted(((i, names.get(i, "")) for i in ids), key=lambda p: p[1])


@bp.get("/todo")
def index():
    tab, scene, user = _choice()
    session, reg, me = db(), registry(), actor()
    kinds = todo_kinds.catalogue(reg)
    people = _people(session)
    users = todo_kinds.whose(session, me, user)
    nav = []
    for kind in kinds.values():
        counts = kind.counts(session, reg, me, users if kind.delegable else [me.user_id])
        nav.append((kind, counts))
    if tab not in kinds:  # a plain visit: the first kind with something to do
        tab = next((k.name for k, c in nav if c[k.scenes[0].name]), next(iter(kinds)))
    kind = kinds[tab]
    scene = scene if scene in {s.name for s in kind.scenes} else kind.scenes[0].name
    offset = min(whole_number(request.args.get("offset", "")) or 0, MAX_OFFSET)
    listing = kind.page(session, reg, me, scene, users if kind.delegable else [me.user_id],
                        offset)
    _decorate(listing.items)
    counts = next(c for k, c in nav if k.name == tab)
    return render_template("todo.html", nav=nav, kind=kind, tab=tab, scene=scene,
                           counts=counts, items=listing.items, next_offset=listing.next,
                           offset=offset, people=people, user=user, when=when,
                           bulk=scene in kind.markable and scene != "handled")


def _back_to_tab() -> str:
    tab = request.form.get("tab", "")
    scene, user = request.form.get("scene", ""), request.form.get("user", "")
    kinds = todo_kinds.catalogue(registry())
    return url_for(".index", tab=tab if tab in kinds or tab in LEGACY_TABS else None,
                   scene=scene if SCENE.fullmatch(scene) else None,
                   user=user if user == "all" or whole_number(user) else None)


@bp.post("/todo/<int:todo_id>/handled")
def handled(todo_id: int):
    with unit_of_work() as session:
        todos.handle(session, actor().user_id, todo_id)
    flash(_("Marked handled."), "success")
    return redirect(_back_to_tab())


@bp.post("/todo/<int:todo_id>/reopen")
def reopen(todo_id: int):
    with unit_of_work() as session:
        todos.handle(session, actor().user_id, todo_id, handled=False)
    flash(_("Back among the open todos."), "success")
    return redirect(_back_to_tab())


@bp.post("/todo/<kind_name>/handled")
def handled_many(kind_name: str):
    """标记为已处理 for the ticked items, the user's or a subordinate's (on their behalf)."""
    kind = _kind_or_404(kind_name)
    ids = [n for n in (whole_number(raw) for raw in request.form.getlist("id"))
           if n is not None]
    if not ids:
        flash(_("Tick the items to mark handled first."), "warning")
        return redirect(_back_to_tab())
    with unit_of_work() as session:
        me = actor()
        users = todo_kinds.whose(session, me, request.form.get("user", ""))
        count = kind.mark(session, registry(), me, ids, users if kind.delegable
                          else [me.user_id])
    flash(_("%(count)d marked handled.", count=count), "success")
    return redirect(_back_to_tab())

