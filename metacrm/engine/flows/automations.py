"""Automations at run time: a write (or an approval's end) runs the automations it triggers.

They run inside the transaction of the write that triggered them, from the records
service's ``after_write`` phase (after roll-ups), so a rollback undoes both sides. Their
``set`` actions write through the records service as the system actor with the entry
``automation``: validation, audit (``via`` names the automation), roll-ups and further
automations all apply, and fields the engine owns stay refused. A chain that comes back
to an automation on a record it is already running for (A sets B sets A…), or grows
deeper than ``MAX_DEPTH``, is stopped with ``AutomationLoop``, which rolls the whole
write back; ``metacrm validate`` refuses the loops it can see beforehand.

Approvals name no automation: ``write_hooks.install()`` has ``approval_ended`` listen
to the approval engine's end-of-approval event point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import AutomationLoop
from metacrm.engine.flows import automation_actions
from metacrm.engine.flows.approval_rules import expression_values
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.automation_checks import CompiledAutomation
from metacrm.metadata.automations import APPROVAL_TRIGGERS
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef

__all__ = ["MAX_DEPTH", "RUN", "approval_ended", "run"]

MAX_DEPTH = 8  # automations started by automations, at most
_CHAIN = "metacrm.automation_chain"  # session.info: (automation, record id) now running
_OUTCOMES = {outcome: event for event, outcome in APPROVAL_TRIGGERS.items()}


# -- what a write triggers ------------------------------------------------------------------
def _entered(registry: Registry, obj: ObjectDef, automation: CompiledAutomation,
             row: Mapping[str, Any], changed: Mapping[str, Any] | None) -> bool:
    """A stage of the trigger's is entered: the stage field changed to it (a stage move),
    or a new record starts in it."""
    stages = automation.definition.trigger.stages
    return any(row.get(p.field) in stages and (changed is None or p.field in changed)
               for p in registry.processes_of(obj.name))


def _fires(ctx: WriteContext, automation: CompiledAutomation, row: Mapping[str, Any]) -> bool:
    trigger = automation.definition.trigger
    created = ctx.operation == "create"
    if trigger.event == "created":
        return created
    if trigger.event == "stage_entered":
        return _entered(ctx.registry, ctx.obj, automation, row, None if created else ctx.changes)
    if created:
        return False
    if trigger.event == "updated":
        return bool(ctx.changes)
    if trigger.event == "field_changed":
        return not ctx.changes.keys().isdisjoint(trigger.fields)
    return False  # approval triggers: approval_ended


def _on_write(ctx: WriteContext) -> None:
    for row in ctx.rows:
        for automation in ctx.registry.automations_of(ctx.obj.name):
            if _fires(ctx, automation, row) and run(
                    ctx.session, ctx.registry, ctx.obj, automation, row, ctx.actor.user_id) \
                    and automation.sets_own_record:
                ctx.reread = True  # the write's result is stale


RUN = Hook("automations.run", "after_write", frozenset({"create", "update"}), _on_write,
           lambda ctx: bool(ctx.registry.automations.get(ctx.obj.name)))


# -- approvals ------------------------------------------------------------------------------
def approval_ended(session: Session, registry: Registry, approval: Mapping[str, Any],
                   outcome: str, actor_id: int | None) -> None:
    """The approval engine's event: an approval was approved, rejected or withdrawn."""
    event = _OUTCOMES.get(outcome)
    if event is None or approval["object"] not in registry.automations:
        return
    found = [a for a in registry.automations_of(approval["object"], event)
             if not a.definition.trigger.flows or approval["flow"] in a.definition.trigger.flows]
    if not found:
        return
    obj = registry.object(approval["object"])
    row = records.read(session, registry, obj, approval["record_id"], actor=SYSTEM)
    for automation in found:
        run(session, registry, obj, automation, row, actor_id)


# -- running one ----------------------------------------------------------------------------
def run(session: Session, registry: Registry, obj: ObjectDef, automation: CompiledAutomation,
        row: Mapping[str, Any], actor_id: int | None) -> bool:
    """Run ``automation`` for the record ``row`` if its condition holds (a blank or an
    error does not); True when it ran."""
    values = expression_values(session, registry, obj, row, automation.names)
    condition = automation.condition
    if condition is not None:
        try:
            if condition.evaluate(values) is not True:
                return False
        except (TypeError, ValueError, ArithmeticError):
            return False
    with _Link(session, automation, row["id"]):
        for action, compiled in zip(automation.definition.actions, automation.values,
                                    strict=True):
            automation_actions.ACTIONS[action.kind](automation_actions.Act(
                session, registry, obj, automation, row, values, actor_id), action, compiled)
    return True


class _Link:
    """One automation running for one record, on the session's chain of them."""

    def __init__(self, session: Session, automation: CompiledAutomation, record_id: int):
        self.chain: list[tuple[str, str, int]] = session.info.setdefault(_CHAIN, [])
        self.link = (automation.ident, automation.object, record_id)

    def __enter__(self) -> None:
        if self.link in self.chain or len(self.chain) >= MAX_DEPTH:
            names = [f"{ident} ({obj} {rid})" for ident, obj, rid in [*self.chain, self.link]]
            raise AutomationLoop(Message("automations trigger each other in a loop: "
                                         "%(chain)s; nothing was saved",
                                         chain=" → ".join(names)))
        self.chain.append(self.link)

    def __exit__(self, *exc: object) -> None:
        self.chain.pop()

