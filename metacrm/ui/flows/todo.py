"""The todo centre (待办), and the navigation's counts of todos, approvals and unread
notifications and announcements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.flows import announcements, approvals, todos
from metacrm.engine.flows.stages import stage_label
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.i18n import label
from metacrm.ui.records.widgets import user_timezone
from metacrm.ui.runtime import db, registry

bp = Blueprint("todo", __name__)
TABS = ("approvals", "assigned", "stage_work", "handled")


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
        user_id = actor().user_id
        g.badges = {**todos.counts(db(), user_id),
                    "announcements": announcements.unread_count(db(), user_id)}
    return {"badges": g.badges}


def when(value: dt.datetime | None) -> str:
    return value.astimezone(user_timezone()).strftime("%Y-%m-%d %H:%M") if value else ""



def _names(ids: Iterable[int | None]) -> dict[int, str]:
    return users.display_names(db(), {i for i in ids if i is not None})


def _object_label(name: str | None) -> str:
    obj = registry().objects.get(name or "")
    return label(obj.label) if obj else name or ""


# -- the todo centre ----------------------------------------------------------------------
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


def _todo_rows(found: list[dict[str, Any]], titles: Mapping[tuple[str, int], str],
               names: Mapping[int, str]) -> list[dict[str, Any]]:
    stamp = clock.now()
    for item in found:
        item["title"] = titles.get((item["object"], item["record_id"])) or \
            f"#{item['record_id']}"
        item["object_label"] = _object_label(item["object"])
        item["by"] = names.get((item["params"] or {}).get("by"), "")
        item["overdue"] = item["handled_at"] is None and item["due_at"] is not None and \
            item["due_at"] < stamp
        if item["kind"] == "stage_work":
            item.update(_stage_work(item))
    return found


def first_tab(lists: Mapping[str, list[Any]]) -> str:
    """The tab a plain visit opens: the first with something in it."""
    return next((key for key in TABS[:-1] if lists[key]), TABS[0])


@bp.get("/todo")
def index():
    asked = request.args.get("tab", "")
    tab = asked if asked in TABS else ""
    session, me = db(), actor()
    pending = approvals.inbox(session, me, "pending")
    open_items = todos.open_todos(session, me.user_id)
    handled = todos.open_todos(session, me.user_id, handled=True) if tab == "handled" else []
    shown = pending + open_items + handled
    titles = approvals.titles(session, registry(), shown)
    names = _names([a["submitter_id"] for a in pending] +
                   [(t["params"] or {}).get("by") for t in open_items + handled])
    reg = registry()
    for item in pending:
        flow = reg.approval_flows.get(item["flow"])
        item["flow_label"] = label(flow.label) if flow else item["flow"]
        item["step_label"] = label(flow.steps[item["step"]].label) \
            if flow and 0 <= item["step"] < len(flow.steps) else ""
        item["title"] = titles.get((item["object"], item["record_id"])) or \
            f"#{item['record_id']}"
        item["object_label"] = _object_label(item["object"])
        item["submitter"] = names.get(item["submitter_id"], "")
    _todo_rows(open_items + handled, titles, names)
    lists = {"approvals": pending,
             "assigned": [t for t in open_items if t["kind"] == "assigned"],
             "stage_work": [t for t in open_items if t["kind"] == "stage_work"],
             "handled": handled}
    tab = tab or first_tab(lists)
    return render_template("todo.html", tab=tab, tabs=TABS, lists=lists, items=lists[tab],
                           when=when)


def _back_to_tab() -> str:
    tab = request.form.get("tab", "")
    return url_for(".index", tab=tab if tab in TABS else None)


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
