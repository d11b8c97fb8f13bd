"""Whether an approval flow applies to a record, the lock a pending approval holds, and
the fields only an approval's outcome writes.

The stage engine reads these to know what a move needs; the approval engine uses them
to start approvals. Kept apart from both so that neither imports the other's module.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied, RecordLocked, RecordNotFound
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_approval as a
from metacrm.engine.writing import records
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.flows import ApprovalFlowDef
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["LOCK", "OUTCOME_FIELDS", "OWNER", "applies", "expression_values", "has_flows",
           "offered", "outcome_fields", "pending_for", "refuse_if_any_locked", "submittable"]

OWNER = "approvals"  # the records service's writer of the fields an outcome sets


def applies(session: Session, registry: Registry, obj: ObjectDef, flow: ApprovalFlowDef,
            row: Mapping[str, Any]) -> bool:
    """Whether the record meets the flow's entry condition (a blank result does not).

    The condition reads the whole stored record: ``row`` may be what the user sees, with
    his hidden fields left out, and a flow must not depend on who looks at the record.
    Only the answer leaves this function, never the values it read."""
    condition = registry.flow_conditions.get(flow.name)
    if condition is None:
        return True
    try:
        return condition.evaluate(expression_values(session, registry, obj, row,
                                                    condition.names)) is True
    except (TypeError, ValueError, ArithmeticError):
        return False


def expression_values(session: Session, registry: Registry, obj: ObjectDef,
                      row: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """What an expression reading ``names`` sees of the record: its stored fields (those
    ``row`` lacks read once) and its lookups' fields (``lookup.field``)."""
    names = list(names)
    values: dict[str, Any] = dict.fromkeys(names)
    values.update(row)
    values.update(_stored(session, registry, obj, row, names))
    for name in names:
        if "." not in name:
            continue
        lookup, target_field = name.split(".", 1)
        target = registry.table(obj.all_fields[lookup].target_object)
        values[name] = session.execute(select(target.c[target_field]).where(
            target.c.id == values.get(lookup))).scalar() if values.get(lookup) else None
    return values


def _stored(session: Session, registry: Registry, obj: ObjectDef, row: Mapping[str, Any],
            names: Iterable[str]) -> dict[str, Any]:
    """The stored values of the fields a condition reads that ``row`` lacks (hidden
    from its reader, or not selected), by one read of the record."""
    wanted = {name.split(".", 1)[0] for name in names}
    missing = sorted(n for n in wanted if n not in row and n in obj.queryable)
    if not missing or row.get("id") is None:
        return {}
    table = registry.table(obj)
    found = session.execute(select(*(table.c[n] for n in missing))
                            .where(table.c.id == row["id"])).first()
    return dict(found._mapping) if found is not None else {}


def pending_for(session: Session, obj: ObjectDef, record_id: int) -> RowMapping | None:
    return session.execute(select(a).where(a.c.object == obj.name, a.c.record_id == record_id,
                                           a.c.status == "pending")).mappings().first()


def refuse_if_locked(session: Session, registry: Registry, obj: ObjectDef,
                     record_id: int) -> None:
    """A record in an approval is locked for editing (one indexed look-up, and none for
    objects without flows)."""
    if not registry.flows_of(obj.name):
        return
    found = session.execute(select(a.c.id).where(
        a.c.object == obj.name, a.c.record_id == record_id, a.c.status == "pending")).first()
    if found:
        raise RecordLocked(Message("the record is locked while approval %(id)d is pending",
                                   id=found.id))


def refuse_if_any_locked(session: Session, registry: Registry, obj: ObjectDef,
                         record_ids: Collection[int]) -> None:
    """The same lock for a set of records (a transfer): one statement for all of them."""
    if not record_ids or not registry.flows_of(obj.name):
        return
    found = session.execute(select(a.c.record_id, a.c.id).where(
        a.c.object == obj.name, a.c.record_id.in_(sorted(record_ids)),
        a.c.status == "pending").order_by(a.c.record_id).limit(1)).first()
    if found:
        raise RecordLocked(Message("%(object)s %(record)d is locked while approval %(id)d is "
                                   "pending", object=named(obj.name, obj.label),
                                   record=found.record_id, id=found.id))


def submittable(session: Session, registry: Registry, obj: ObjectDef,
                row: Mapping[str, Any]) -> list[ApprovalFlowDef]:
    """The flows a user may submit the record to now: submit-triggered, condition met."""
    return [f for f in registry.flows_of(obj.name, "submit")
            if applies(session, registry, obj, f, row)]


def offered(session: Session, registry: Registry, obj: ObjectDef, record_id: int, *,
            actor: Actor) -> list[ApprovalFlowDef]:
    """The flows ``actor`` may submit the record to now: he may edit it and their
    condition holds (none when he may not)."""
    try:
        row = records.read(session, registry, obj, record_id, actor=actor, need=("edit",))
    except (PermissionDenied, RecordNotFound):
        return []
    return submittable(session, registry, obj, row)


def has_flows(ctx: WriteContext) -> bool:
    return bool(ctx.registry.flows_of(ctx.obj.name))


# The approval engine itself writes its fields on the record it holds (on submit).
LOCK = Hook("approvals.lock", "guard", frozenset({"update", "delete", "restore"}),
         lambda ctx: refuse_if_locked(ctx.session, ctx.registry, ctx.obj,
                                      (ctx.current or {})["id"]),
         lambda ctx: ctx.entry != OWNER and has_flows(ctx))


def outcome_fields(registry: Registry, obj: ObjectDef) -> frozenset[str]:
    """The fields an approval flow sets (``on_submit``, ``on_withdraw``, ``on_approve``,
    ``on_reject``)."""
    return frozenset(n for n, owner in registry.owned_fields(obj.name).items()
                     if owner == OWNER)


def refuse_outcome_fields(ctx: WriteContext) -> None:
    """Only an approval's outcome writes what it sets: a user (or a stage move carrying
    a user's values) may send such a field only with the value it holds."""
    owned = outcome_fields(ctx.registry, ctx.obj)
    if ctx.operation == "update":
        for name in owned & ctx.changes.keys():
            ctx.errors[0][name] = Message("is set by the approval flow")
        return
    defaults = ctx.writer.plan.defaults
    for row, errors in zip(ctx.rows, ctx.errors, strict=True):
        for name in owned:
            if row.get(name) != defaults.get(name):
                errors[name] = Message("is set by the approval flow")


OUTCOME_FIELDS = Hook("approvals.outcome_fields", "before_validate",
                      frozenset({"create", "update"}), refuse_outcome_fields,
                      lambda ctx: ctx.entry != OWNER
                      and bool(outcome_fields(ctx.registry, ctx.obj)))
