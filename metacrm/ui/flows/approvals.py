"""The approval inbox, an approval's page with its timeline and actions, and submitting a
record for approval. Thin handlers over ``engine.approvals``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from metacrm.engine.access import permissions, users
from metacrm.engine.errors import (
    ApprovalConflict,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    ValidationFailed,
)
from metacrm.engine.flows import approval_rules, approvals
from metacrm.metadata.flows import ApprovalFlowDef
from metacrm.metadata.model import ObjectDef
from metacrm.ui import context
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.i18n import label, language, translate
from metacrm.ui.records import cells, forms, widgets
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import db, registry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

bp = Blueprint("approvals", __name__)
BADGES = {"pending": "warning", "approved": "success", "rejected": "danger",
          "withdrawn": "secondary"}


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


# -- words ------------------------------------------------------------------------------
@bp.app_template_global("approval_badge")
def badge(status: str) -> str:
    """The Bootstrap colour of an approval's status."""
    return BADGES.get(status, "secondary")


@bp.app_template_global("approval_status_label")
def status_label(status: str) -> str:
    return {"pending": _("In approval"), "approved": _("Approved"),
            "rejected": _("Rejected"), "withdrawn": _("Withdrawn")}.get(status, status)


def task_label(status: str) -> str:
    return {"active": _("Waiting for a decision"), "waiting": _("Not yet their turn"),
            "approved": _("Approved"), "rejected": _("Rejected"),
            "handed_over": _("Handed over"), "cancelled": _("No longer needed")
            }.get(status, status)


def kind_label(kind: str) -> str:
    return {"handed_over": _("handed over"), "added_before": _("added before"),
            "added_after": _("added after")}.get(kind, "")


def action_text(action: str, details: Mapping[str, Any], names: Mapping[int, str]) -> str:
    """What a timeline event says, in the user's language."""
    def who(user_id: Any) -> str:
        return names.get(user_id, str(user_id))

    if action == "hand_over":
        return _("handed the step over to %(user)s", user=who(details.get("to")))
    if action in ("add_before", "add_after"):
        return (_("added %(user)s to approve before them", user=who(details.get("user")))
                if action == "add_before" else
                _("added %(user)s to approve after them", user=who(details.get("user"))))
    if action == "submitter_skipped":
        return _("left out %(user)s, who submitted it", user=who(details.get("user")))
    if action == "escalated":
        return _("found no approver: sent to %(users)s",
                 users=", ".join(who(u) for u in details.get("users", ())))
    return {"submit": _("submitted"), "resubmit": _("resubmitted"), "approve": _("approved"),
            "reject": _("rejected"), "withdraw": _("withdrew"),
            "auto_approved": _("found no approver: the step passed"),
            "auto_rejected": _("found no approver: rejected"),
            "approved": _("The approval passed"),
            "rejected": _("The approval was rejected")}.get(action, action)


@bp.app_template_global("approval_when")
def when(value: dt.datetime | None) -> str:
    """A moment in the user's time zone, to the minute."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(widgets.user_timezone()).strftime("%Y-%m-%d %H:%M")


def flow_of(name: str) -> ApprovalFlowDef | None:
    return registry().approval_flows.get(name)


def step_label(approval: Mapping[str, Any], index: int | None) -> str:
    flow = flow_of(approval["flow"])
    if flow is None or index is None or not 0 <= index < len(flow.steps):
        return ""
    return label(flow.steps[index].label)


def flow_label(name: str) -> str:
    flow = flow_of(name)
    return label(flow.label) if flow else name


# -- what pages show ----------------------------------------------------------------------
def names_in(events: Iterable[Mapping[str, Any]], extra: Iterable[int] = ()) -> dict[int, str]:
    ids = set(extra)
    for event in events:
        ids.add(event["actor_id"])
        details = event["details"] or {}
        ids.update(details.get(k) for k in ("to", "user"))
        ids.update(details.get("users", ()))
    return users.display_names(db(), {i for i in ids if isinstance(i, int)})


def timeline(items: list[Mapping[str, Any]], extra_names: Iterable[int] = ()
             ) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """The events of these approvals, oldest first, worded; and the names it used."""
    by_id = {a["id"]: a for a in items}
    events = approvals.timeline(db(), by_id) if by_id else []
    names = names_in(events, extra_names)
    out = []
    for event in events:
        approval = by_id[event["approval_id"]]
        out.append({**event, "actor": names.get(event["actor_id"], _("Automatic")),
                    "text": action_text(event["action"], event["details"] or {}, names),
                    "step_label": step_label(approval, event["step"]),
                    "flow_label": flow_label(approval["flow"])})
    return out, names


def current_tasks(approval: Mapping[str, Any], found: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    return [t for t in found if t["round"] == approval["round"]
            and t["step"] == approval["step"] and t["status"] in approvals.OPEN]


def my_task(approval: Mapping[str, Any], found: list[dict[str, Any]]) -> dict[str, Any] | None:
    if approval["status"] != "pending":
        return None
    return next((t for t in current_tasks(approval, found)
                 if t["user_id"] == actor().user_id and t["status"] == "active"), None)


def record_panel(obj: ObjectDef, row: dict[str, Any]) -> dict[str, Any] | None:
    """The approval card of a record's page; None for objects without approval flows."""
    reg = registry()
    if not reg.flows_of(obj.name):
        return None
    session = db()
    history = approvals.of_record(session, obj, row["id"])
    pending = next((a for a in history if a["status"] == "pending"), None)
    found = approvals.tasks(session, pending["id"]) if pending else []
    waiting_on = [t["user_id"] for t in current_tasks(pending, found)
                  if t["status"] == "active"] if pending else []
    offered: list[ApprovalFlowDef] = []
    if pending is None:
        offered = approval_rules.offered(session, reg, obj, row["id"], actor=actor())
    events, names = timeline(history, waiting_on)
    latest = history[0] if history else None
    choosing = [f for f in offered if f.chosen_steps]
    everyone = users.active_users(session) if choosing else []
    me = actor().user_id
    return {"obj": obj, "record_id": row["id"], "latest": latest, "pending": pending,
            "locked": pending is not None,
            "step_label": step_label(pending, pending["step"]) if pending else "",
            "waiting_on": [names.get(u, str(u)) for u in waiting_on],
            "may_decide": pending is not None and my_task(pending, found) is not None,
            "may_withdraw": pending is not None
            and pending["submitter_id"] == actor().user_id,
            "flows": offered,
            # whom the submitter may choose, by flow: himself only where it allows that
            "users": {f.name: [u for u in everyone if f.submitter_may_approve or u[0] != me]
                      for f in choosing},
            "timeline": list(reversed(events))}


# -- acting -------------------------------------------------------------------------------
def back_to(default: str) -> str:
    """Where a form asked to return: a path on this site, else ``default``."""
    return local_target(request.form.get("back"), default)


def problem_text(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed) and exc.fields:
        return "; ".join(translate(m) for m in exc.fields.values())
    return translate(exc.args[0]) if exc.args else str(exc)


def attempt(work: Callable[[Session], Any], done: str, back: str):
    """Run an engine action: commit and say ``done``, or roll back and say why not."""
    try:
        with unit_of_work() as session:
            work(session)
    except (ValidationFailed, ApprovalConflict, PermissionDenied, RecordLocked) as exc:
        flash(problem_text(exc), "warning")
    else:
        flash(done, "success")
    return redirect(back)


def comment() -> str | None:
    return request.form.get("comment", "").strip()[:2000] or None


@bp.post("/o/<object_name>/<int:record_id>/approvals")
def submit(object_name: str, record_id: int):
    obj = context.object_or_404(object_name)
    flows = registry().flows_of(obj.name, "submit")
    name = request.form.get("flow") or (flows[0].name if len(flows) == 1 else "")
    flow = registry().approval_flows.get(name)
    chosen = {s.name: request.form.getlist(f"chosen.{s.name}")
              for s in (flow.chosen_steps if flow else ())}
    back = url_for("pages.detail", object_name=obj.name, record_id=record_id)
    try:
        return attempt(lambda s: approvals.submit(s, registry(), obj, record_id, name,
                                                  actor=actor(), chosen=chosen,
                                                  comment=comment()),
                       _("Submitted for approval."), back)
    except RecordNotFound:
        abort(404)


def viewable(approval_id: int) -> dict[str, Any]:
    """The approval, if the user may see it (else 404): its submitter, its approvers,
    administrators, and whoever may read its record."""
    try:
        return approvals.visible(db(), registry(), approval_id, actor=actor())
    except RecordNotFound:
        abort(404)


def decision(approval_id: int, operation: Callable[..., None], done: str, **params: Any):
    viewable(approval_id)
    return attempt(lambda s: operation(s, registry(), approval_id, actor=actor(),
                                       comment=comment(), **params),
                   done, back_to(url_for(".detail", approval_id=approval_id)))


@bp.post("/approvals/<int:approval_id>/approve")
def approve(approval_id: int):
    return decision(approval_id, approvals.approve, _("Approved."))


@bp.post("/approvals/<int:approval_id>/reject")
def reject(approval_id: int):
    return decision(approval_id, approvals.reject, _("Rejected."))


@bp.post("/approvals/<int:approval_id>/withdraw")
def withdraw(approval_id: int):
    return decision(approval_id, approvals.withdraw, _("Withdrawn."))


@bp.post("/approvals/<int:approval_id>/hand-over")
def hand_over(approval_id: int):
    return decision(approval_id, approvals.hand_over, _("Handed over."),
                    to_user=request.form.get("to_user", ""))


@bp.post("/approvals/<int:approval_id>/add-approver")
def add_approver(approval_id: int):
    return decision(approval_id, approvals.add_approver, _("Approver added."),
                    user_id=request.form.get("user_id", ""),
                    position=request.form.get("position", ""))


# -- pages ----------------------------------------------------------------------------------
@bp.get("/approvals")
def inbox():
    box = request.args.get("box", "pending")
    if box not in approvals.BOXES:
        box = "pending"
    session, me = db(), actor()
    found = {b: approvals.inbox(session, me, b) for b in approvals.BOXES}
    items = found[box]
    titles = approvals.titles(session, registry(), items)
    names = users.display_names(session, {i["submitter_id"] for i in items})
    rows = [{**i, "title": titles.get((i["object"], i["record_id"])),
             "object_label": label(registry().objects[i["object"]].label)
             if i["object"] in registry().objects else i["object"],
             "flow_label": flow_label(i["flow"]),
             "submitter": names.get(i["submitter_id"], ""),
             "step_label": step_label(i, i["step"]) if i["status"] == "pending" else ""}
            for i in items]
    return render_template("approvals/inbox.html", box=box, rows=rows,
                           counts={b: len(v) for b, v in found.items()},
                           task_label=task_label)


def candidates(session: Session, approval: Mapping[str, Any]) -> list[tuple[int, str]]:
    """Whom the approver may hand over to or add (转交, 加签): active users but himself
    and, unless the flow allows it, the submitter."""
    barred = approvals.barred(registry(), approval) | {actor().user_id}
    return [u for u in users.active_users(session) if u[0] not in barred]


def steps_of(approval: Mapping[str, Any], flow: ApprovalFlowDef | None,
             found: list[dict[str, Any]], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Each step with the tasks of the latest round that reached it."""
    if flow is None:
        return []
    out = []
    for index, step in enumerate(flow.steps):
        mine = [t for t in found if t["step"] == index]
        latest = max((t["round"] for t in mine), default=None)
        out.append({"index": index, "step": step, "current": approval["status"] == "pending"
                    and approval["step"] == index,
                    "tasks": [{**t, "name": names.get(t["user_id"], str(t["user_id"]))}
                              for t in mine if t["round"] == latest]})
    return out


@bp.get("/approvals/<int:approval_id>")
def detail(approval_id: int):
    approval = viewable(approval_id)
    session, me = db(), actor()
    obj = registry().objects.get(approval["object"])
    flow = flow_of(approval["flow"])
    found = approvals.tasks(session, approval_id)
    events, names = timeline([approval], [t["user_id"] for t in found]
                             + [approval["submitter_id"]])
    row = approvals.record_of(session, registry(), approval, actor=me) if obj else None
    sections = []
    if row is not None:
        hidden = permissions.hidden_fields(session, me, obj, registry())
        shown = {n: f for n, f in obj.queryable.items() if n not in hidden}
        sections = [(label_, cells.labelled_cells(fs, row, language(), cells.APPROVAL))
                    for label_, fs in forms.form_sections(obj, forms.business_type_for(
                        obj, row.get("business_type")), shown)]
    pending = approval["status"] == "pending"
    task = my_task(approval, found)
    return render_template(
        "approvals/detail.html", approval=approval, obj=obj, flow=flow, row=row,
        title=row.get(obj.title_field) if row else _("(record %(id)d)", id=approval["record_id"]),
        sections=sections, steps=steps_of(approval, flow, found, names),
        timeline=list(reversed(events)), submitter=names.get(approval["submitter_id"], ""),
        step_label=step_label(approval, approval["step"]) if pending else "",
        may_decide=task is not None,
        may_withdraw=pending and approval["submitter_id"] == me.user_id,
        may_open_record=obj is not None and row is not None
        and context.record_may(obj, approval["record_id"], ("read",))["read"],
        users=candidates(session, approval) if task else [], task_label=task_label,
        kind_label=kind_label)
