"""Stage processes at run time: where a record stands, what it needs to move, the move.

A move is one records-service update of the stage field (and the win rate), so
validation, permissions, optimistic locking and the audit log hold as for any edit; the
stage history, the stage-work todos and a stage approval are written in the same
transaction. The path bar, the kanban board and the API all call ``move``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, true, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import org
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.flows import approval_rules, todos
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import (
    sys_approval,
    sys_attachment,
    sys_stage_check,
    sys_stage_history,
)
from metacrm.engine.writing import records
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.flows import KeyEventDef, StageDef, StageProcessDef
from metacrm.metadata.labels import Label, joined
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["FIRST_STAGE", "HISTORY", "MANAGED_FIELDS", "OWNER", "PathState", "Requirement",
           "TYPE_CHANGE", "all_done", "apply_move", "attachment", "checks", "complete_event",
           "history", "managed_fields", "needs_approval", "process_of", "requirements",
           "stage_label", "state", "tick_work"]

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,80}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
OWNER = "stages"  # the records service's writer of the stage and win-rate fields



@dataclass(frozen=True)
class Requirement:
    """One thing missing before a move: a field to fill, work to tick, a key event, the
    stage approval, or the lost reason."""

    kind: str  # field | work | event | approval | reason | stage (one not to skip)
    name: str
    label: Label
    stage: str
    message: Message


@dataclass
class PathState:
    """Where a record stands in its process, for the path bar and the API."""

    process: StageProcessDef
    current: StageDef | None
    entered_at: dt.datetime | None
    done: set[tuple[str, str]] = field(default_factory=set)  # (work|event, item)
    next: StageDef | None = None
    missing: list[Requirement] = field(default_factory=list)  # to move to ``next``
    approval: RowMapping | None = None  # the record's pending approval, if any

    @property
    def win_rate(self) -> float:
        return win_rate(self.current, self.done) if self.current else 0


def win_rate(stage: StageDef, done: set[tuple[str, str]]) -> float:
    """The stage's rate plus the shares of its key events done (销售易's key events)."""
    return stage.win_rate + sum(e.share for e in stage.key_events if ("event", e.name) in done)


# -- which process ------------------------------------------------------------------------
def process_of(session: Session, registry: Registry, obj: ObjectDef, row: Mapping[str, Any],
               departments: dict[int | None, set[str]] | None = None
               ) -> StageProcessDef | None:
    """The process a record follows: by its business type, its department, or the
    object's default. ``departments`` caches department names for a batch."""
    processes = registry.processes_of(obj.name)
    if not processes:
        return None
    names: set[str] = set()
    if any(p.departments for p in processes):
        cache = departments if departments is not None else {}
        key = row.get("department")
        if key not in cache:
            cache[key] = org.names_upward(session, key)
        names = cache[key]
    return registry.process_for(obj.name, row.get("business_type"), names)


def managed_fields(registry: Registry, obj: ObjectDef) -> frozenset[str]:
    """The fields only a stage move writes: the stage and win-rate fields."""
    out: set[str] = set()
    for p in registry.processes_of(obj.name):
        out.add(p.field)
        if p.win_rate_field:
            out.add(p.win_rate_field)
    return frozenset(out)


# -- requirements -------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _label(obj: ObjectDef, name: str) -> Label:
    f = obj.all_fields.get(name)
    return f.label if f else Label(name, name)


def stage_label(process: StageProcessDef, obj: ObjectDef, stage: StageDef) -> Label:
    if stage.label is not None:
        return stage.label
    option = obj.all_fields[process.field].option(stage.name)
    return option.label if option else Label(stage.name, stage.name)


def done_items(session: Session, obj: ObjectDef, record_id: int, stage: str
               ) -> set[tuple[str, str]]:
    c = sys_stage_check
    return {(r.kind, r.item) for r in session.execute(select(c.c.kind, c.c.item).where(
        c.c.object == obj.name, c.c.record_id == record_id, c.c.stage == stage))}


def all_done(session: Session, obj: ObjectDef, record_id: int) -> dict[str, set[tuple[str, str]]]:
    """Every stage's ticked work and done key events of a record, in one read."""
    c = sys_stage_check
    out: dict[str, set[tuple[str, str]]] = {}
    for r in session.execute(select(c.c.stage, c.c.kind, c.c.item).where(
            c.c.object == obj.name, c.c.record_id == record_id)):
        out.setdefault(r.stage, set()).add((r.kind, r.item))
    return out


def requirements(session: Session, registry: Registry, obj: ObjectDef, row: Mapping[str, Any],
                 process: StageProcessDef, to: StageDef, *,
                 values: Mapping[str, Any] | None = None,
                 done: set[tuple[str, str]] | None = None) -> list[Requirement]:
    """What a move from the record's stage to ``to`` still needs. Forward: the current
    stage's work, required key events and approval, no stage skipped that has its own,
    and the required fields of every stage entered on the way. Into lost: the reason.
    Back: nothing."""
    current = process.stage(row.get(process.field))
    merged = {**row, **(values or {})}
    out: list[Requirement] = []
    if to.type == "lost":
        if to.reason_field and _blank(merged.get(to.reason_field)):
            out.append(Requirement("reason", to.reason_field, _label(obj, to.reason_field),
                                   to.name, Message("a lost reason is required")))
        return out
    start = process.position[current.name] if current else -1
    if current is not None and current.terminal:
        passed = [to]  # reopening a won or lost record: only the stage it enters
    elif process.position[to.name] <= start:
        return out  # moving back
    else:
        if current is not None:
            done = done_items(session, obj, row["id"], current.name) if done is None else done
            out.extend(_exit_requirements(current, done))
        passed = [s for s in process.stages if s.type != "lost"
                  and start < process.position[s.name] <= process.position[to.name]]
        # A stage with work, required key events or an approval is moved through, never
        # jumped over: its requirements can only be met while the record is in it.
        out.extend(Requirement("stage", s.name, stage_label(process, obj, s), s.name,
                               Message("stage %(stage)s cannot be skipped: it has work, key "
                                       "events or an approval",
                                       stage=named(s.name, stage_label(process, obj, s))))
                   for s in passed[:-1] if s.work or s.approval
                   or any(e.required for e in s.key_events))
    for s in passed:
        for name in s.required:
            if _blank(merged.get(name)) and not any(r.name == name and r.kind == "field"
                                                    for r in out):
                out.append(Requirement("field", name, _label(obj, name), s.name,
                                       Message("%(field)s must be filled to enter %(stage)s",
                                               field=_label(obj, name),
                                               stage=named(s.name, stage_label(process, obj, s)))))
    return out


def _exit_requirements(current: StageDef, done: set[tuple[str, str]]) -> list[Requirement]:
    out = [Requirement("work", w.name, w.label, current.name,
                       Message("stage work '%(item)s' is not done", item=w.label))
           for w in current.work if ("work", w.name) not in done]
    out += [Requirement("event", e.name, e.label, current.name,
                        Message("key event '%(item)s' is not done", item=e.label))
            for e in current.key_events if e.required and ("event", e.name) not in done]
    return out


def needs_approval(session: Session, registry: Registry, obj: ObjectDef,
                   row: Mapping[str, Any], process: StageProcessDef, to: StageDef
                   ) -> str | None:
    """The approval flow a forward move out of the current stage must pass first, if it
    applies to the record and was not approved since the record entered the stage."""

    current = process.stage(row.get(process.field))
    if current is None or current.terminal or not current.approval or to.type == "lost":
        return None
    if process.position[to.name] <= process.position[current.name]:
        return None
    flow = registry.approval_flows.get(current.approval)
    if flow is None or not approval_rules.applies(session, registry, obj, flow, row):
        return None
    entered = _entered_at(session, obj, row["id"])
    a = sys_approval
    passed = session.execute(select(a.c.id).where(
        a.c.object == obj.name, a.c.record_id == row["id"], a.c.flow == flow.name,
        a.c.status == "approved", a.c.stage_from == current.name,
        a.c.submitted_at >= entered if entered else true()).limit(1)).first()
    return None if passed else flow.name


def _entered_at(session: Session, obj: ObjectDef, record_id: int) -> dt.datetime | None:
    h = sys_stage_history
    return session.execute(select(h.c.entered_at).where(
        h.c.object == obj.name, h.c.record_id == record_id, h.c.left_at.is_(None))
        .order_by(h.c.id.desc()).limit(1)).scalar()


# -- reading --------------------------------------------------------------------------------
def state(session: Session, registry: Registry, obj: ObjectDef, row: Mapping[str, Any]
          ) -> PathState | None:
    """The path bar of a record the caller has read (permissions are the caller's)."""

    process = process_of(session, registry, obj, row)
    if process is None:
        return None
    current = process.stage(row.get(process.field))
    found = PathState(process, current, _entered_at(session, obj, row["id"]))
    found.approval = approval_rules.pending_for(session, obj, row["id"])
    if current is None:
        return found
    found.done = done_items(session, obj, row["id"], current.name)
    if not current.terminal:
        later = [s for s in process.stages if process.position[s.name] >
                 process.position[current.name] and s.type != "lost"]
        found.next = later[0] if later else None
    if found.next is not None:
        found.missing = requirements(session, registry, obj, row, process, found.next,
                                     done=found.done)
        flow = needs_approval(session, registry, obj, row, process, found.next)
        if flow:
            label = registry.approval_flows[flow].label
            found.missing.append(Requirement("approval", flow, label, current.name,
                                             Message("needs approval '%(flow)s'",
                                                     flow=label)))
    return found


def history(session: Session, obj: ObjectDef, record_id: int) -> list[dict[str, Any]]:
    h = sys_stage_history
    return [dict(r._mapping) for r in session.execute(
        select(h).where(h.c.object == obj.name, h.c.record_id == record_id)
        .order_by(h.c.id))]


# -- moving ---------------------------------------------------------------------------------
def apply_move(held: WriteContext, process: StageProcessDef, target: StageDef, *,
               values: Mapping[str, Any] | None = None, version: int | None = None,
               done: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The move itself, its checks passed, of a record ``hold`` took for the stage engine:
    the record, its history and its todos. ``done``: the target stage's checks, if read."""
    session, obj, actor = held.session, held.obj, held.actor
    row = held.current
    assert row is not None
    current = row.get(process.field)
    update_values = {k: v for k, v in (values or {}).items() if k != process.field}
    update_values[process.field] = target.name
    if done is None:
        done = done_items(session, obj, row["id"], target.name)
    if process.win_rate_field:
        update_values[process.win_rate_field] = win_rate(target, done)
    record = records.change(held, update_values, version=version)
    stamp = clock.now()
    h = sys_stage_history
    session.execute(update(h).where(h.c.object == obj.name, h.c.record_id == row["id"],
                                    h.c.left_at.is_(None))
                    .values(left_at=stamp, left_by=actor.user_id))
    back = current in process.position and \
        process.position[target.name] < process.position[current]
    session.execute(insert(h).values(
        object=obj.name, record_id=row["id"], process=process.name, stage=target.name,
        from_stage=current, direction="back" if back else "forward", entered_at=stamp,
        entered_by=actor.user_id))
    todos.close(session, obj.name, row["id"], kind="stage_work")
    _work_todos(obj, process, [record], target, stamp, session, done)
    return record


def _work_todos(obj: ObjectDef, process: StageProcessDef, rows: Sequence[Mapping[str, Any]],
                stage: StageDef, stamp: dt.datetime, session: Session,
                done: Collection[tuple[str, str]] = frozenset()) -> None:
    """A todo for the owner per work item with a due date."""
    todos.add(session, [
        {"user_id": r.get("owner"), "kind": "stage_work", "object": obj.name,
         "record_id": r["id"], "stage": stage.name, "item": w.name,
         "params": {"process": process.name}, "due_at": stamp + dt.timedelta(days=w.due_days)}
        for r in rows for w in stage.work
        if w.due_days is not None and ("work", w.name) not in done])


# -- records service hooks ----------------------------------------------------------------
def check_new(session: Session, registry: Registry, obj: ObjectDef,
              rows: Sequence[dict[str, Any]], *, chosen_by_user: bool = False,
              defaults: Mapping[str, Any] | None = None) -> None:
    """A new record starts in a stage of its process (the first, unless it names one) with
    that stage's required fields and win rate; refuses the first row that cannot.

    ``chosen_by_user``: the values come from a user, who may name only a start stage of
    the process and no win rate but that stage's (a field's default is no choice)."""
    departments: dict[int | None, set[str]] = {}
    defaults = defaults or {}
    for i, row in enumerate(rows):
        process = process_of(session, registry, obj, row, departments)
        if process is None:
            continue
        errors: dict[str, Any] = {}
        stage = _start_of(process, obj, row, chosen_by_user, defaults, errors)
        if stage is not None:
            row[process.field] = stage.name
            rate = process.win_rate_field
            if rate and chosen_by_user and row.get(rate) not in (None, defaults.get(rate),
                                                                 stage.win_rate):
                errors[rate] = Message("changes by moving the record along its stage path")
            if rate:
                row[rate] = stage.win_rate
            for need in requirements(session, registry, obj, {**row, process.field: None},
                                     process, stage, done=set()):
                if need.kind in ("field", "reason"):
                    errors.setdefault(need.name, need.message)
        if errors:
            raise ValidationFailed(errors, row=i if len(rows) > 1 else None)


def _start_of(process: StageProcessDef, obj: ObjectDef, row: Mapping[str, Any],
              chosen_by_user: bool, defaults: Mapping[str, Any], errors: dict[str, Any]
              ) -> StageDef | None:
    """The stage a new record starts in, or None with the refusal in ``errors``."""
    named_stage = row.get(process.field)
    if not named_stage:
        return process.first
    stage = process.stage(named_stage)
    if not chosen_by_user:
        if stage is None:
            errors[process.field] = Message("'%(value)s' is not a stage of %(process)s",
                                            value=str(named_stage)[:63], process=process.name)
        return stage
    if stage in process.starts:
        return stage
    if named_stage == defaults.get(process.field):
        return process.first  # the field's default, not a choice: the process decides
    starts = [named(s.name, stage_label(process, obj, s)) for s in process.starts]
    errors[process.field] = Message("a new record starts in %(stages)s; the stage then "
                                    "changes by moving the record along its stage path",
                                    stages=joined(starts))
    return None


def check_type_change(session: Session, registry: Registry, obj: ObjectDef,
                      row: Mapping[str, Any], errors: dict[str, Any]) -> None:
    """A record whose business type changes keeps its stage only if the new type's process
    has it; otherwise the change is refused (move the record to a shared stage first)."""
    process = process_of(session, registry, obj, row)
    if process is not None and process.stage(row.get(process.field)) is None:
        errors.setdefault("business_type", Message(
            "the record's stage %(stage)s is not a stage of this business type's process",
            stage=str(row.get(process.field))))


def started(session: Session, registry: Registry, obj: ObjectDef,
            rows: Sequence[Mapping[str, Any]], actor: Actor) -> None:
    """New records enter their first stage: a history entry each, and the work todos."""
    if not registry.processes_of(obj.name):
        return
    stamp = clock.now()
    entries: list[dict[str, Any]] = []
    by_stage: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    departments: dict[int | None, set[str]] = {}
    for row in rows:
        process = process_of(session, registry, obj, row, departments)
        stage = process.stage(row.get(process.field)) if process else None
        if process is None or stage is None:
            continue
        entries.append({"object": obj.name, "record_id": row["id"], "process": process.name,
                        "stage": stage.name, "from_stage": None, "direction": "start",
                        "entered_at": stamp, "entered_by": actor.user_id, "left_at": None,
                        "left_by": None})
        by_stage.setdefault((process.name, stage.name), []).append(row)
    if entries:
        session.execute(insert(sys_stage_history), entries)
    for (process_name, stage_name), found in by_stage.items():
        process = registry.stage_processes[process_name]
        _work_todos(obj, process, found, process.by_name[stage_name], stamp, session)


# -- stage work and key events ------------------------------------------------------------
def _checked(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
             actor: Actor) -> tuple[WriteContext, StageProcessDef, StageDef]:
    held = records.hold(session, registry, obj, record_id, actor=actor, by=OWNER)
    row = held.current or {}
    process = process_of(session, registry, held.obj, row)
    stage = process.stage(row.get(process.field)) if process else None
    if process is None or stage is None or stage.terminal:
        raise ValidationFailed({"stage": Message("the record is not in an open stage")})
    return held, process, stage


def tick_work(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
              item: str, *, actor: Actor, done: bool = True) -> None:
    """Tick (or untick) an item of the current stage's work."""
    held, _, stage = _checked(session, registry, obj, record_id, actor)
    obj = held.obj
    if stage.work_item(item) is None:
        raise ValidationFailed({"item": Message("'%(value)s' is not work of this stage",
                                                value=str(item)[:63])})
    _set_check(session, obj, record_id, stage.name, "work", item, actor, done)
    if done:
        todos.close(session, obj.name, record_id, kind="stage_work", stage=stage.name, item=item)


def complete_event(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
                   event: str, *, actor: Actor, done: bool = True,
                   attachment: tuple[str, str, bytes] | None = None) -> None:
    """Mark a key event of the current stage done (with its document when it needs one)
    or undone; the win rate follows."""
    held, process, stage = _checked(session, registry, obj, record_id, actor)
    obj, row = held.obj, held.current or {}
    found: KeyEventDef | None = stage.key_event(event)
    if found is None:
        raise ValidationFailed({"event": Message("'%(value)s' is not a key event of this stage",
                                                 value=str(event)[:63])})
    attachment_id = None
    if done and found.attachment:
        if attachment is None or not attachment[2]:
            raise ValidationFailed({"attachment": Message(
                "key event '%(item)s' needs a document attached", item=found.label)})
        attachment_id = store_attachment(session, obj, record_id, attachment, actor)
    _set_check(session, obj, record_id, stage.name, "event", event, actor, done, attachment_id)
    if process.win_rate_field:
        rate = win_rate(stage, done_items(session, obj, record_id, stage.name))
        if row.get(process.win_rate_field) != rate:
            records.change(held, {process.win_rate_field: rate})


def _set_check(session: Session, obj: ObjectDef, record_id: int, stage: str, kind: str,
               item: str, actor: Actor, done: bool, attachment_id: int | None = None) -> None:
    c = sys_stage_check
    where = (c.c.object == obj.name, c.c.record_id == record_id, c.c.stage == stage,
             c.c.kind == kind, c.c.item == item)
    session.execute(delete(c).where(*where))
    if done:
        session.execute(insert(c).values(object=obj.name, record_id=record_id, stage=stage,
                                         kind=kind, item=item, done_by=actor.user_id,
                                         done_at=clock.now(), attachment_id=attachment_id))


def media_type(content_type: str | None) -> str:
    """The ``type/subtype`` of an uploaded document's content type, without parameters;
    anything else (CR/LF that would break the download's header, junk) is unknown."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if _MEDIA_TYPE.fullmatch(kind) else "application/octet-stream"


def store_attachment(session: Session, obj: ObjectDef, record_id: int,
                     attachment: tuple[str, str, bytes], actor: Actor) -> int:
    name, content_type, content = attachment
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise ValidationFailed({"attachment": Message("a document may be at most %(size)d MB",
                                                      size=MAX_ATTACHMENT_BYTES // 2**20)})
    name = _CONTROL.sub("_", name or "").strip() or "document"  # no database stores NUL
    return session.execute(insert(sys_attachment).returning(sys_attachment.c.id).values(
        object=obj.name, record_id=record_id, name=name[:255],
        content_type=media_type(content_type), size=len(content),
        content=content, uploaded_by=actor.user_id, uploaded_at=clock.now())).scalar_one()


def checks(session: Session, obj: ObjectDef, record_id: int, stage: str) -> dict[tuple[str, str],
                                                                                dict[str, Any]]:
    """Who ticked each work item or did each key event of a stage, and its document."""
    c, a = sys_stage_check, sys_attachment
    rows = session.execute(select(c.c.kind, c.c.item, c.c.done_by, c.c.done_at,
                                  c.c.attachment_id, a.c.name.label("attachment_name"))
                           .outerjoin(a, a.c.id == c.c.attachment_id)
                           .where(c.c.object == obj.name, c.c.record_id == record_id,
                                  c.c.stage == stage))
    return {(r.kind, r.item): dict(r._mapping) for r in rows}


def attachment(session: Session, attachment_id: int) -> RowMapping | None:
    return session.execute(select(sys_attachment).where(sys_attachment.c.id == attachment_id)
                           ).mappings().first()


# -- the records service's hooks ----------------------------------------------------------
def _follows_process(ctx: WriteContext) -> bool:
    return not ctx.is_line and bool(ctx.registry.processes_of(ctx.obj.name))


def _refuse_managed(ctx: WriteContext) -> None:
    """Only a stage move writes the stage and win-rate fields."""
    for name in managed_fields(ctx.registry, ctx.obj) & ctx.changes.keys():
        ctx.errors[0][name] = Message("changes by moving the record along its stage path")


def _check_type_change(ctx: WriteContext) -> None:
    check_type_change(ctx.session, ctx.registry, ctx.obj, ctx.rows[0], ctx.errors[0])


MANAGED_FIELDS = Hook("stages.managed_fields", "before_validate", frozenset({"update"}),
                      _refuse_managed, lambda ctx: ctx.entry != OWNER and _follows_process(ctx))
TYPE_CHANGE = Hook("stages.business_type_change", "before_validate", frozenset({"update"}),
                   _check_type_change,
                   lambda ctx: "business_type" in ctx.changes and _follows_process(ctx))
FIRST_STAGE = Hook("stages.first_stage", "before_write", frozenset({"create"}),
                   lambda ctx: check_new(ctx.session, ctx.registry, ctx.obj, ctx.rows,
                                         chosen_by_user=ctx.entry != OWNER,
                                         defaults=ctx.writer.plan.defaults),
                   _follows_process)
HISTORY = Hook("stages.history", "after_write", frozenset({"create"}),
               lambda ctx: started(ctx.session, ctx.registry, ctx.obj, ctx.rows, ctx.actor),
               _follows_process)
