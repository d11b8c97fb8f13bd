"""The notifications page: the user's notifications worded in their language, filtered by
read state and by group, marked read or unread one by one or all at once.

How a kind reads is a catalogue (``WORDING``); a notification that carries its own text
(``params["message"]``, from metadata: automations, reminders) shows that text, so a kind
added elsewhere needs no entry here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import login_required

from metacrm.engine.access import users
from metacrm.engine.flows import approvals, notifications
from metacrm.metadata.labels import Label
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.i18n import label
from metacrm.ui.input import whole_number
from metacrm.ui.records.widgets import user_timezone
from metacrm.ui.runtime import db, registry

bp = Blueprint("notifications", __name__)
PAGE = 50
GROUP_LABELS = {"approvals": lazy_gettext("Approvals"), "transfers": lazy_gettext("Transfers"),
                "automations": lazy_gettext("Automations"),
                "reminders": lazy_gettext("Reminders")}


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


def when(value: dt.datetime | None) -> str:
    return value.astimezone(user_timezone()).strftime("%Y-%m-%d %H:%M") if value else ""


def object_label(name: str | None) -> str:
    obj = registry().objects.get(name or "")
    return label(obj.label) if obj else name or ""


# -- wording ------------------------------------------------------------------------------
def _flow(item: Mapping[str, Any]) -> str:
    flow = (item["params"] or {}).get("flow")
    return label(Label.of(flow)) if isinstance(flow, dict) else ""


def _transferred(item: Mapping[str, Any]) -> str:
    count = (item["params"] or {}).get("count")
    count = count if isinstance(count, int) and count > 1 else 1
    if count == 1:
        return _("A %(object)s was transferred to you", object=object_label(item["object"]))
    return _("%(count)d %(object)s records were transferred to you", count=count,
             object=object_label(item["object"]))


WORDING: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "approval_submitted": lambda i: _("Waiting for your approval: %(flow)s", flow=_flow(i)),
    "approval_approved": lambda i: _("Approved: %(flow)s", flow=_flow(i)),
    "approval_rejected": lambda i: _("Rejected: %(flow)s", flow=_flow(i)),
    "approval_withdrawn": lambda i: _("Withdrawn by the submitter: %(flow)s", flow=_flow(i)),
    "approval_handed_over": lambda i: _("Handed over to you: %(flow)s", flow=_flow(i)),
    "record_transferred": _transferred,
}


def wording(item: Mapping[str, Any]) -> str:
    """A notification in the user's language: its own text if it carries one, else its
    kind's words, else (a kind nobody words) the kind's name."""
    message = notifications.message_of(item["params"])
    if message is not None:
        return label(message)
    word = WORDING.get(item["kind"])
    return word(item) if word else item["kind"]



# -- the page -----------------------------------------------------------------------------
def _record_link(item: Mapping[str, Any]) -> str | None:
    """The record, or the object's list after a transfer of several records."""
    if item["object"] not in registry().objects:
        return None
    if item["record_id"] is not None:
        return url_for("pages.detail", object_name=item["object"], record_id=item["record_id"])
    return url_for("pages.list_view", object_name=item["object"])


def _names(ids: Iterable[int | None]) -> dict[int, str]:
    return users.display_names(db(), {i for i in ids if i is not None})


def _filters(values: Mapping[str, str]) -> dict[str, str | None]:
    """The page's whitelisted filters: ``show=unread`` and ``group``; others are dropped."""
    return {"show": "unread" if values.get("show") == "unread" else None,
            "group": values.get("group") if values.get("group") in notifications.GROUPS
            else None}


def _shown(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each notification shows: its words, record, approval and who caused it."""
    session = db()
    titles = approvals.titles(session, registry(), [n for n in found
                                                    if n["record_id"] is not None])
    names = _names(n["actor_id"] for n in found)
    now_at = approvals.statuses(session, [n["approval_id"] for n in found
                                          if n["approval_id"] is not None])
    for item in found:
        # Where the approval stands now, beside a request to decide it; an outcome's own
        # words already say it ("Rejected: …").
        kind = notifications.KINDS.get(item["kind"])
        item["approval_status"] = now_at.get(item["approval_id"]) \
            if kind is not None and kind.asks else None
        item["text"] = wording(item)
        item["title"] = titles.get((item["object"], item["record_id"]), "")
        item["actor"] = names.get(item["actor_id"], "")
        item["record_link"] = _record_link(item)
        item["approval_link"] = url_for("approvals.detail", approval_id=item["approval_id"]) \
            if item["approval_id"] is not None else None
    return found


@bp.get("/notifications")
def index():
    before = request.args.get("before", "")
    filters = _filters(request.args)
    group = filters["group"]
    found = notifications.listing(db(), actor().user_id, limit=PAGE + 1,
                                  before=whole_number(before),
                                  unread_only=filters["show"] == "unread",
                                  kinds=notifications.kinds_of(group) if group else None)
    more = len(found) > PAGE
    found = _shown(found[:PAGE])
    return render_template("notifications.html", items=found, when=when, filters=filters,
                           groups={g: GROUP_LABELS.get(g, g) for g in notifications.GROUPS},
                           older=found[-1]["id"] if more else None,
                           paged=bool(before))


@bp.post("/notifications/read")
def mark_read():
    """All the user's notifications, or the one named by ``id``; ``unread=1`` undoes."""
    found = whole_number(request.form.get("id", ""))
    ids = None if found is None else [found]
    read = request.form.get("unread") != "1"
    with unit_of_work() as session:
        notifications.mark_read(session, actor().user_id, ids, read=read)
    back = request.form.get("before", "")
    return redirect(url_for(".index", before=whole_number(back), **_filters(request.form)))
