"""Approval flows at run time: submit, approve, reject, withdraw, hand over, add approver.

An approval is one row (``sys_approval``) with its tasks (one per approver and step) and
its timeline (``sys_approval_event``). Every action locks the approval row first (on
PostgreSQL ``SELECT … FOR UPDATE``; SQLite's write lock serialises writers anyway) and
then checks that the actor's task is still active, so two approvers of an "any" step
answering at the same instant give one decision and one move to the next step. A
partial unique index keeps a record in at most one pending approval. While pending, the
records service refuses to change the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import permissions
from metacrm.engine.actor import SYSTEM, Actor
from metacrm.engine.errors import (
    ApprovalConflict,
    ObjectNotFound,
    PermissionDenied,
    RecordNotFound,
    ValidationFailed,
)
from metacrm.engine.flows import approval_rules, approvers, notifications
from metacrm.engine.flows.approval_rules import applies, has_flows, pending_for
from metacrm.engine.reading import query
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import (
    sys_approval,
    sys_approval_event,
    sys_approval_task,
    sys_user,
)
from metacrm.engine.writing import records
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.flows import ApprovalFlowDef
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["BOXES", "FIELD_CHANGE", "OPEN", "add_approver", "approve", "barred", "get",
           "hand_over", "inbox", "may_view", "of_record", "on_end", "record_of", "reject",
           "statuses", "submit", "tasks", "timeline", "titles", "visible", "withdraw"]

OPEN = ("active", "waiting")
DECIDED = ("approved", "rejected", "handed_over")
# Tasks that answer for the step itself; in an "any" step the first approval of one of
# them settles the others (an approver added after someone still has to answer; one added
# before someone only answers first, and that someone then decides).
PEERS = ("approver", "handed_over")

a, t, e = sys_approval, sys_approval_task, sys_approval_event
OWN_REQUEST = Message("the submitter may not decide his own approval")

# Who hears that an approval ended (approved, rejected, withdrawn), in the transaction of
# the action that ended it: registered by ``write_hooks.install()``, so this module names
# none of them (automations listen here).
Listener = Callable[[Session, Registry, Mapping[str, Any], str, int | None], None]
_listeners: list[Listener] = []


def on_end(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def _ended(session: Session, registry: Registry, approval: Mapping[str, Any], outcome: str,
           actor_id: int | None) -> None:
    for listener in _listeners:
        listener(session, registry, approval, outcome, actor_id)



# -- reading ------------------------------------------------------------------------------
def get(session: Session, approval_id: int, *, lock: bool = False) -> dict[str, Any]:
    stmt = select(a).where(a.c.id == approval_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.execute(stmt).mappings().first()
    if row is None:
        raise RecordNotFound(f"approval {approval_id} not found")
    return dict(row)


def statuses(session: Session, approval_ids: Iterable[int]) -> dict[int, str]:
    """Where each approval stands now (pending, approved, …), in one statement."""
    ids = list(set(approval_ids))
    if not ids:
        return {}
    return {r.id: r.status for r in session.execute(select(a.c.id, a.c.status)
                                                    .where(a.c.id.in_(ids)))}


def tasks(session: Session, approval_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in session.execute(select(t).where(t.c.approval_id == approval_id)
                                             .order_by(t.c.id)).mappings()]


def timeline(session: Session, approval_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The events of one or more approvals, oldest first."""
    return [dict(r) for r in session.execute(
        select(e).where(e.c.approval_id.in_(list(approval_ids))).order_by(e.c.id)).mappings()]


def of_record(session: Session, obj: ObjectDef, record_id: int) -> list[dict[str, Any]]:
    """Every approval of a record, newest first."""
    return [dict(r) for r in session.execute(
        select(a).where(a.c.object == obj.name, a.c.record_id == record_id)
        .order_by(a.c.id.desc())).mappings()]


def may_view(session: Session, actor: Actor, approval: Mapping[str, Any]) -> bool:
    """The submitter, anyone asked to approve it and administrators see an approval;
    others see it through the record (the caller checks the record's read scope)."""
    if actor.is_admin or approval["submitter_id"] == actor.user_id:
        return True
    return session.execute(select(t.c.id).where(t.c.approval_id == approval["id"],
                                                t.c.user_id == actor.user_id).limit(1)
                           ).first() is not None


def barred(registry: Registry, approval: Mapping[str, Any]) -> frozenset[int]:
    """Who may not be made an approver of ``approval``: its submitter, unless the flow
    lets him decide his own request (``submitter_may_approve``)."""
    flow = registry.approval_flows.get(approval["flow"])
    if flow is not None and flow.submitter_may_approve:
        return frozenset()
    return frozenset({approval["submitter_id"]})


def visible(session: Session, registry: Registry, approval_id: int, *, actor: Actor
            ) -> dict[str, Any]:
    """The approval if ``actor`` takes part in it, administers, or may read its record;
    else RecordNotFound, so a stranger cannot tell whether it exists."""
    approval = get(session, approval_id)
    if may_view(session, actor, approval):
        return approval
    try:
        records.get(session, registry, approval["object"], approval["record_id"], actor=actor)
    except (RecordNotFound, ObjectNotFound, PermissionDenied):
        raise RecordNotFound(f"approval {approval_id} not found") from None
    return approval


def record_of(session: Session, registry: Registry, approval: Mapping[str, Any], *,
              actor: Actor) -> dict[str, Any] | None:
    """The approval's record as its page shows it to ``actor``, who may see the approval
    (``visible``): read whatever his data scope, since an approver may be outside it, with
    lookup titles, without the fields hidden from him."""
    obj = registry.object(approval["object"])
    page = query.list_records(session, registry, obj, query.ListParams(
        filter=[["id", "eq", approval["record_id"]]], lookup_titles=True, count="none"),
        actor=SYSTEM)
    if not page.items:
        return None
    return permissions.without_hidden(page.items[0],
                                      permissions.hidden_fields(session, actor, obj, registry))


BOXES = ("pending", "processed", "submitted")


def inbox(session: Session, actor: Actor, box: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The approval inbox: pending for me (my active tasks), processed by me, submitted by
    me; newest first. Each item is the approval with ``task_id`` where a task is meant."""
    if box == "pending":
        stmt = (select(a, t.c.id.label("task_id"), t.c.created_at.label("task_at"))
                .join(t, t.c.approval_id == a.c.id)
                .where(t.c.user_id == actor.user_id, t.c.status == "active")
                .order_by(t.c.created_at.desc(), t.c.id.desc()))
    elif box == "processed":
        stmt = (select(a, t.c.id.label("task_id"), t.c.status.label("task_status"),
                       t.c.decided_at.label("task_at"), t.c.comment.label("task_comment"))
                .join(t, t.c.approval_id == a.c.id)
                .where(t.c.user_id == actor.user_id, t.c.status.in_(DECIDED))
                .order_by(t.c.decided_at.desc(), t.c.id.desc()))
    elif box == "submitted":
        stmt = select(a).where(a.c.submitter_id == actor.user_id).order_by(a.c.id.desc())
    else:
        raise ValidationFailed({"box": Message("must be one of %(values)s",
                                               values=", ".join(BOXES))})
    return [dict(r) for r in session.execute(stmt.limit(limit)).mappings()]


def titles(session: Session, registry: Registry, items: Iterable[Mapping[str, Any]]
           ) -> dict[tuple[str, int], str]:
    """The records' titles, one statement per object: an approval shows what it is about
    to its approvers, whatever their data scope."""
    wanted: dict[str, set[int]] = {}
    for item in items:
        wanted.setdefault(item["object"], set()).add(item["record_id"])
    out = {}
    for name, ids in wanted.items():
        obj = registry.objects.get(name)
        if obj is None:
            continue
        table = registry.table(obj)
        for row in session.execute(select(table.c.id, table.c[obj.title_field])
                                   .where(table.c.id.in_(ids))):
            out[(name, row[0])] = row[1]
    return out


# -- submitting ---------------------------------------------------------------------------
def submit(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
           flow_name: str, *, actor: Actor, chosen: Mapping[str, Sequence[int]] | None = None,
           comment: str | None = None, stage: tuple[str, str] | None = None,
           trigger: str = "submit") -> int:
    """Start (or, after a rejection, resubmit) the record's approval; returns its id.

    The submitter must be allowed to edit the record. ``chosen``: for each step whose
    approvers the submitter picks, the user ids. ``stage``: the (from, to) move a stage
    approval waits to make."""
    obj = registry.object(obj) if isinstance(obj, str) else obj
    row = records.read(session, registry, obj, record_id, actor=actor, need=("edit",),
                       for_update=True)
    flow = registry.approval_flows.get(flow_name)
    if flow is None or flow.object != obj.name:
        raise ValidationFailed({"flow": Message("'%(value)s' is not an approval flow of "
                                                "%(object)s", value=str(flow_name)[:63],
                                                object=named(obj.name, obj.label))})
    if not applies(session, registry, obj, flow, row):
        raise ValidationFailed({"flow": Message("the record does not meet the condition of "
                                                "this approval flow")})
    stamp = clock.now()
    previous = session.execute(select(a).where(
        a.c.object == obj.name, a.c.record_id == record_id, a.c.flow == flow.name)
        .order_by(a.c.id.desc()).limit(1)).mappings().first()
    resubmitting = previous is not None and previous["status"] == "rejected" and \
        previous["submitter_id"] == actor.user_id and previous["stage_to"] == (
            stage[1] if stage else None)
    rejected = previous if resubmitting else None  # the approval a resubmission reopens
    # Resubmitting keeps the approvers chosen before unless others are chosen now.
    picked = _check_chosen(session, flow, {**(rejected["chosen"] if rejected is not None else {}),
                                           **{k: v for k, v in (chosen or {}).items() if v}},
                           actor.user_id)
    try:
        with session.begin_nested():
            if rejected is not None:
                step = rejected["step"] if flow.resubmit == "from_rejected_step" else 0
                approval_id, round_ = rejected["id"], rejected["round"] + 1
                session.execute(update(a).where(a.c.id == approval_id).values(
                    status="pending", round=round_, step=step, finished_at=None,
                    chosen={**rejected["chosen"], **picked}, trigger=trigger))
            else:
                step, round_ = 0, 1
                approval_id = session.execute(insert(a).returning(a.c.id).values(
                    flow=flow.name, object=obj.name, record_id=record_id, status="pending",
                    trigger=trigger, stage_from=stage[0] if stage else None,
                    stage_to=stage[1] if stage else None, submitter_id=actor.user_id,
                    submitted_at=stamp, step=0, round=1, chosen=picked)).scalar_one()
    except IntegrityError:
        raise ApprovalConflict(Message("the record is already in an approval")) from None
    _event(session, approval_id, actor.user_id, "resubmit" if resubmitting else "submit",
           round_, None, comment, {"trigger": trigger, "from_step": step})
    # Before the first step: an outcome reached at once (nobody to approve) comes later
    # and its values win.
    _set_fields(session, registry, obj, record_id, flow.on_submit)
    _enter_step(session, registry, get(session, approval_id), step, actor.user_id)
    return approval_id


def _check_chosen(session: Session, flow: ApprovalFlowDef, chosen: Mapping[str, Sequence[int]],
                  submitter_id: int | None) -> dict[str, list[int]]:
    errors, out = {}, {}
    for step in flow.chosen_steps:
        ids = [int(i) for i in chosen.get(step.name, ()) if str(i).isdigit()]
        active = approvers._active(session, ids)
        if submitter_id in active and not flow.submitter_may_approve:
            errors[f"chosen.{step.name}"] = OWN_REQUEST
        elif not active:
            errors[f"chosen.{step.name}"] = Message("choose the approvers of step %(step)s",
                                                    step=step.label)
        out[step.name] = active
    if errors:
        raise ValidationFailed(errors)
    return out


def _event(session: Session, approval_id: int, actor_id: int | None, action: str, round_: int,
           step: int | None, comment: str | None = None,
           details: dict[str, Any] | None = None) -> None:
    session.execute(insert(e).values(approval_id=approval_id, at=clock.now(), actor_id=actor_id,
                                     action=action, round=round_, step=step,
                                     comment=(comment or None) and comment[:2000],
                                     details=details or {}))


def _enter_step(session: Session, registry: Registry, approval: Mapping[str, Any],
                index: int, actor_id: int | None = None) -> None:
    """Give step ``index`` its tasks; a step with nobody to approve follows its policy.
    Past the last step the approval is approved."""
    flow = registry.approval_flows[approval["flow"]]
    who = _submitter(session, approval["submitter_id"])
    while index < len(flow.steps):
        step = flow.steps[index]
        users = approvers.resolve(session, step, who, approval["chosen"].get(step.name, ()))
        users = _without_submitter(session, flow, approval, index, users)
        if not users and step.if_empty == "admin":
            users = _without_submitter(session, flow, approval, index,
                                       approvers.administrators(session))
            if users:
                _event(session, approval["id"], None, "escalated", approval["round"], index,
                       details={"users": users})
        if not users and step.if_empty == "reject":
            _event(session, approval["id"], None, "auto_rejected", approval["round"], index)
            _finish(session, registry, approval, "rejected", actor_id)
            return
        if not users:
            _event(session, approval["id"], None, "auto_approved", approval["round"], index)
            index += 1
            continue
        session.execute(update(a).where(a.c.id == approval["id"]).values(step=index))
        _create_tasks(session, approval, index, users,
                      approvers.APPROVER_TYPES[step.approvers.type].sequential)
        notifications.notify(session, users[:1] if approvers.APPROVER_TYPES[
            step.approvers.type].sequential else users, "approval_submitted",
            actor_id=approval["submitter_id"], **_about(approval, flow))
        return
    _finish(session, registry, approval, "approved", actor_id)


def _without_submitter(session: Session, flow: ApprovalFlowDef, approval: Mapping[str, Any],
                       index: int, users: list[int]) -> list[int]:
    """The step's approvers less the submitter, who never decides his own request unless
    the flow allows it; leaving him out is on the timeline."""
    submitter = approval["submitter_id"]
    if flow.submitter_may_approve or submitter not in users:
        return users
    _event(session, approval["id"], None, "submitter_skipped", approval["round"], index,
           details={"user": submitter})
    return [u for u in users if u != submitter]


def _create_tasks(session: Session, approval: Mapping[str, Any], index: int,
                  users: list[int], sequential: bool) -> None:
    stamp = clock.now()
    previous = None
    for user_id in users:
        previous = session.execute(insert(t).returning(t.c.id).values(
            approval_id=approval["id"], round=approval["round"], step=index, user_id=user_id,
            status="waiting" if sequential and previous else "active",
            kind="chain" if sequential else "approver",
            waits_for=previous if sequential else None, created_at=stamp)).scalar_one()


def _submitter(session: Session, user_id: int) -> approvers.Submitter:
    department = session.execute(select(sys_user.c.department_id).where(
        sys_user.c.id == user_id)).scalar()
    return approvers.Submitter(user_id, department)


def _about(approval: Mapping[str, Any], flow: ApprovalFlowDef) -> dict[str, Any]:
    return {"object_name": approval["object"], "record_id": approval["record_id"],
            "approval_id": approval["id"], "params": {"flow": flow.label.as_dict()}}


def _finish(session: Session, registry: Registry, approval: Mapping[str, Any],
            outcome: str, actor_id: int | None = None) -> None:
    """End the approval: its status, the flow's field updates, a stage approval's move,
    and the submitter told."""
    from metacrm.engine.flows import stages

    flow = registry.approval_flows[approval["flow"]]
    session.execute(update(a).where(a.c.id == approval["id"]).values(
        status=outcome, finished_at=clock.now()))
    _cancel_open(session, approval["id"], approval["round"])
    _close_requests(session, approval["id"])
    _event(session, approval["id"], actor_id, outcome, approval["round"], None)
    obj = registry.object(approval["object"])
    _set_fields(session, registry, obj, approval["record_id"],
                flow.on_approve if outcome == "approved" else flow.on_reject)
    if outcome == "approved" and approval["stage_to"]:
        held = records.hold(session, registry, obj, approval["record_id"], actor=SYSTEM,
                            by=stages.OWNER)
        row = held.current or {}
        process = stages.process_of(session, registry, obj, row)
        target = process.stage(approval["stage_to"]) if process else None
        if process and target is not None and row.get(process.field) == approval["stage_from"]:
            stages.apply_move(held, process, target)
    notifications.notify(session, [approval["submitter_id"]], f"approval_{outcome}",
                         actor_id=actor_id, **_about(approval, flow))
    _ended(session, registry, approval, outcome, actor_id)


def _set_fields(session: Session, registry: Registry, obj: ObjectDef, record_id: int,
                updates: Mapping[str, Any] | None) -> None:
    """The flow's field updates (``on_submit``, ``on_withdraw``, ``on_approve``,
    ``on_reject``), through the records service as the fields' owner: versioned and
    audited, in the transaction of the action."""
    if updates:
        records.change(records.hold(session, registry, obj, record_id, actor=SYSTEM,
                                    by=approval_rules.OWNER), updates)


def _cancel_open(session: Session, approval_id: int, round_: int, *, step: int | None = None,
                 spare: int | None = None) -> None:
    """Cancel the open tasks (of a step); ``spare``: not those waiting for that task
    (approvers added after its approver)."""
    stmt = update(t).where(t.c.approval_id == approval_id, t.c.round == round_,
                           t.c.status.in_(OPEN))
    if spare is not None:
        stmt = stmt.where(or_(t.c.waits_for.is_(None), t.c.waits_for != spare))
    if step is not None:
        stmt = stmt.where(t.c.step == step)
    session.execute(stmt.values(status="cancelled", decided_at=clock.now()))


def _close_requests(session: Session, approval_id: int) -> None:
    """Mark done the approval's "waiting for your approval" notifications of users who
    no longer have an open task in it (decided, settled by another, withdrawn, handed
    over): what waits for a user is only what he can still answer."""
    notifications.close_requests(session, approval_id, select(t.c.user_id).where(
        t.c.approval_id == approval_id, t.c.status.in_(OPEN)))


# -- deciding -----------------------------------------------------------------------------
def _my_task(session: Session, approval: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    if approval["status"] != "pending":
        raise ApprovalConflict(Message("this approval has ended: %(status)s",
                                       status=approval["status"]))
    task = session.execute(select(t).where(
        t.c.approval_id == approval["id"], t.c.round == approval["round"],
        t.c.step == approval["step"], t.c.user_id == actor.user_id, t.c.status == "active")
        .order_by(t.c.id).limit(1)).mappings().first()
    if task is None:
        raise ApprovalConflict(Message("this approval is not waiting for you"))
    return dict(task)


def _decide(session: Session, task: Mapping[str, Any], status: str, comment: str | None
            ) -> None:
    session.execute(update(t).where(t.c.id == task["id"]).values(
        status=status, decided_at=clock.now(), comment=(comment or None) and comment[:2000]))


def _answer(session: Session, approval_id: int, actor: Actor, status: str, action: str,
            comment: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lock the approval, find the actor's active task, decide it and put it on the
    timeline; the caller then moves the approval on."""
    approval = get(session, approval_id, lock=True)
    task = _my_task(session, approval, actor)
    _decide(session, task, status, comment)
    _event(session, approval_id, actor.user_id, action, approval["round"], approval["step"],
           comment)
    return approval, task


def approve(session: Session, registry: Registry, approval_id: int, *, actor: Actor,
            comment: str | None = None) -> None:
    approval, task = _answer(session, approval_id, actor, "approved", "approve", comment)
    session.execute(update(t).where(t.c.waits_for == task["id"], t.c.status == "waiting")
                    .values(status="active"))
    flow = registry.approval_flows[approval["flow"]]
    step = flow.steps[approval["step"]]
    sequential = approvers.APPROVER_TYPES[step.approvers.type].sequential
    if step.mode == "any" and not sequential and task["kind"] in PEERS:
        _cancel_open(session, approval_id, approval["round"], step=approval["step"],
                     spare=task["id"])
    woken = [r.user_id for r in session.execute(select(t.c.user_id).where(
        t.c.waits_for == task["id"], t.c.status == "active"))]
    notifications.notify(session, woken, "approval_submitted",
                         actor_id=approval["submitter_id"], **_about(approval, flow))
    still_open = session.execute(select(func.count()).select_from(t).where(
        t.c.approval_id == approval_id, t.c.round == approval["round"],
        t.c.step == approval["step"], t.c.status.in_(OPEN))).scalar_one()
    if not still_open:
        _enter_step(session, registry, approval, approval["step"] + 1, actor.user_id)
    _close_requests(session, approval_id)


def reject(session: Session, registry: Registry, approval_id: int, *, actor: Actor,
           comment: str | None = None) -> None:
    """One rejection rejects the approval; the record returns to the submitter. A flow
    with ``reject_comment_required`` wants the reason."""
    flow = registry.approval_flows.get(get(session, approval_id)["flow"])
    if flow is not None and flow.reject_comment_required and not (comment or "").strip():
        raise ValidationFailed({"comment": Message("give a reason for the rejection")})
    approval, _ = _answer(session, approval_id, actor, "rejected", "reject", comment)
    _finish(session, registry, approval, "rejected", actor.user_id)


def withdraw(session: Session, registry: Registry, approval_id: int, *, actor: Actor,
             comment: str | None = None) -> None:
    """The submitter takes the record back (撤回) before the approval ends."""
    approval = get(session, approval_id, lock=True)
    if approval["submitter_id"] != actor.user_id:
        raise PermissionDenied(Message("only the submitter may withdraw an approval"))
    if approval["status"] != "pending":
        raise ApprovalConflict(Message("this approval has ended: %(status)s",
                                       status=approval["status"]))
    waiting = list(session.execute(select(t.c.user_id).where(
        t.c.approval_id == approval_id, t.c.round == approval["round"],
        t.c.status == "active")).scalars())
    session.execute(update(a).where(a.c.id == approval_id).values(status="withdrawn",
                                                                   finished_at=clock.now()))
    _cancel_open(session, approval_id, approval["round"])
    _close_requests(session, approval_id)
    _event(session, approval_id, actor.user_id, "withdraw", approval["round"], approval["step"],
           comment)
    flow = registry.approval_flows[approval["flow"]]
    _set_fields(session, registry, registry.object(approval["object"]), approval["record_id"],
                flow.on_withdraw)
    notifications.notify(session, waiting, "approval_withdrawn", actor_id=actor.user_id,
                         **_about(approval, flow))
    _ended(session, registry, approval, "withdrawn", actor.user_id)


def _other_user(session: Session, registry: Registry, approval: Mapping[str, Any],
                user_id: Any, field: str) -> int:
    found = approvers._active(session, [int(user_id)] if str(user_id).isdigit() else [])
    if not found:
        raise ValidationFailed({field: Message("no active user with id %(id)s",
                                               id=str(user_id)[:20])})
    if found[0] in barred(registry, approval):
        raise ValidationFailed({field: OWN_REQUEST})
    busy = session.execute(select(t.c.id).where(
        t.c.approval_id == approval["id"], t.c.round == approval["round"],
        t.c.step == approval["step"], t.c.user_id == found[0], t.c.status.in_(OPEN))).first()
    if busy:
        raise ValidationFailed({field: Message("this user is already an approver of the step")})
    return found[0]


def hand_over(session: Session, registry: Registry, approval_id: int, *, actor: Actor,
              to_user: int, comment: str | None = None) -> None:
    """Give my task of the current step to another user (转交)."""
    approval = get(session, approval_id, lock=True)
    task = _my_task(session, approval, actor)
    other = _other_user(session, registry, approval, to_user, "to_user")
    _decide(session, task, "handed_over", comment)
    new_id = session.execute(insert(t).returning(t.c.id).values(
        approval_id=approval_id, round=approval["round"], step=approval["step"],
        user_id=other, status="active",
        kind="chain" if task["kind"] == "chain" else "handed_over",
        created_at=clock.now())).scalar_one()
    session.execute(update(t).where(t.c.waits_for == task["id"]).values(waits_for=new_id))
    _event(session, approval_id, actor.user_id, "hand_over", approval["round"],
           approval["step"], comment, {"to": other})
    _close_requests(session, approval_id)
    notifications.notify(session, [other], "approval_handed_over", actor_id=actor.user_id,
                         **_about(approval, registry.approval_flows[approval["flow"]]))


def add_approver(session: Session, registry: Registry, approval_id: int, *, actor: Actor,
                 user_id: int, position: str, comment: str | None = None) -> None:
    """加签: another user approves before me (my task waits for theirs) or after me (theirs
    waits for my approval)."""
    if position not in ("before", "after"):
        raise ValidationFailed({"position": Message("must be before or after")})
    approval = get(session, approval_id, lock=True)
    task = _my_task(session, approval, actor)
    other = _other_user(session, registry, approval, user_id, "user_id")
    before = position == "before"
    new_id = session.execute(insert(t).returning(t.c.id).values(
        approval_id=approval_id, round=approval["round"], step=approval["step"], user_id=other,
        status="active" if before else "waiting", kind=f"added_{position}",
        waits_for=None if before else task["id"], created_at=clock.now())).scalar_one()
    if before:
        session.execute(update(t).where(t.c.id == task["id"]).values(status="waiting",
                                                                     waits_for=new_id))
    _event(session, approval_id, actor.user_id, f"add_{position}", approval["round"],
           approval["step"], comment, {"user": other})
    if before:
        notifications.notify(session, [other], "approval_submitted",
                             actor_id=approval["submitter_id"],
                             **_about(approval, registry.approval_flows[approval["flow"]]))


# -- records service hook -----------------------------------------------------------------
def after_update(session: Session, registry: Registry, obj: ObjectDef, record_id: int,
                 changed: set[str], row: Mapping[str, Any], actor: Actor) -> bool:
    """A saved change of a flow's trigger fields starts that flow when its condition holds.
    True when a started flow set fields of the record (the write's result is then stale)."""
    rewritten = False
    for flow in registry.flows_of(obj.name, "field_change"):
        if changed & set(flow.trigger_fields) and applies(session, registry, obj, flow, row) \
                and pending_for(session, obj, record_id) is None:
            submit(session, registry, obj, record_id, flow.name, actor=actor,
                   trigger="field_change")
            rewritten = rewritten or bool(flow.updated_fields)
    return rewritten


def _start_on_change(ctx: WriteContext) -> None:
    if after_update(ctx.session, ctx.registry, ctx.obj, ctx.record_id, set(ctx.changes),
                    ctx.rows[0], ctx.actor):
        ctx.reread = True


# -- the records service's hooks ----------------------------------------------------------
FIELD_CHANGE = Hook("approvals.field_change", "after_write", frozenset({"update"}),
         _start_on_change,
         lambda ctx: ctx.by_user and bool(ctx.changes) and has_flows(ctx))
