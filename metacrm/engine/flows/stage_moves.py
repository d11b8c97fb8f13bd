"""A stage move as a user asks for it: checked, then made, or sent to its stage approval.

Above both engines: the stage engine says what a move needs and makes it, the approval
engine runs the stage approval and, once it passes, has the stage engine make the move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.errors import StageRefused, ValidationFailed
from metacrm.engine.flows import approvals, stages
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef

__all__ = ["MoveResult", "move"]


@dataclass(frozen=True)
class MoveResult:
    moved: bool
    record: dict[str, Any] | None = None
    approval_id: int | None = None  # the move waits for this stage approval


def move(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
         to: str, *, actor: Actor, values: Mapping[str, Any] | None = None,
         version: int | None = None, chosen: Mapping[str, Sequence[int]] | None = None
         ) -> MoveResult:
    """Move a record to stage ``to``, or start the stage approval the move needs.

    ``values``: fields given with the move (the lost reason, or required fields filled on
    the way). Refused with StageRefused listing every requirement not met."""
    held = records.hold(session, registry, obj, record_id, actor=actor, by=stages.OWNER)
    obj, row = held.obj, held.current or {}
    process = stages.process_of(session, registry, obj, row)
    if process is None:
        raise ValidationFailed({"stage": Message("this record follows no stage process")})
    target = process.stage(to)
    if target is None:
        raise ValidationFailed({process.field: Message(
            "'%(value)s' is not a stage of %(process)s", value=str(to)[:63],
            process=process.name)})
    if row.get(process.field) == target.name:
        raise ValidationFailed({process.field: Message("the record is already in this stage")})
    values = dict(values or {})
    done = stages.all_done(session, obj, record_id)
    here: str | None = row.get(process.field)
    missing = stages.requirements(session, registry, obj, row, process, target, values=values,
                                  done=done.get(here, set()) if here is not None else set())
    if missing:
        raise StageRefused("; ".join(m.message for m in missing), missing)
    flow = stages.needs_approval(session, registry, obj, row, process, target)
    if flow:
        approval_id = approvals.submit(session, registry, obj, record_id, flow, actor=actor,
                                       chosen=chosen, stage=(row[process.field], target.name),
                                       trigger="stage")
        if registry.approval_flows[flow].updated_fields:  # on_submit changed the record
            row = held.writer.visible(held.writer.fetch(record_id))
        return MoveResult(False, row, approval_id)
    record = stages.apply_move(held, process, target, values=values, version=version,
                               done=done.get(target.name, set()))
    return MoveResult(True, record)
