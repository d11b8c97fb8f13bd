"""Transfer (转移): give selected records a new owner, in one transaction.

The old owner is removed or kept as a read-only or read-write team member; related
records (those whose lookup points at a transferred record) move too when the user
asks, as far as they belonged to the same old owner and the user may transfer them. The
record's department follows its owner. A record locked by a pending approval is not
moved: the transfer is refused, as an edit would be.

The new owner hears of it: a notification per object (how many records) and an
"assigned" todo per record; open stage work follows the records to the new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import audit
from metacrm.engine.access import permissions, teams
from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied, RecordNotFound, ValidationFailed
from metacrm.engine.flows import approval_rules, notifications, todos
from metacrm.engine.systables import sys_team_member, sys_todo, sys_user
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["TransferResult", "transfer"]

OLD_OWNER_CHOICES = ("remove", "read", "write")  # removed, or kept as a team member



@dataclass
class TransferResult:
    moved: dict[str, list[int]] = field(default_factory=dict)  # object → ids

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.moved.values())


def cascade_choices(registry, obj: ObjectDef) -> list[tuple[ObjectDef, str]]:
    """Related lists whose records may move along: (object, lookup field)."""
    return registry.referrers(obj.name)


def transfer(session: Session, registry, actor: Actor, obj: ObjectDef,
             record_ids: Sequence[int], new_owner: int, *, old_owner: str = "remove",
             cascade: Sequence[str] = ()) -> TransferResult:
    """Move ``record_ids`` to ``new_owner``; ``cascade`` names related "object.field"s."""
    permissions.require(session, actor, obj, "transfer")
    errors = {}
    owner_row = session.execute(select(sys_user.c.department_id).where(
        sys_user.c.id == new_owner, sys_user.c.active.is_(True))).first()
    if owner_row is None:
        errors["owner"] = Message("no active user with id %(id)s", id=new_owner)
    if old_owner not in OLD_OWNER_CHOICES:
        errors["old_owner"] = Message("must be remove, read or write")
    choices = {f"{o.name}.{f}": (o, f) for o, f in cascade_choices(registry, obj)}
    unknown = [c for c in cascade if c not in choices]
    if unknown:
        errors["cascade"] = Message("'%(value)s' is not a related list of %(object)s",
                                    value=str(unknown[0])[:100],
                                    object=named(obj.name, obj.label))
    if not record_ids:
        errors["ids"] = Message("choose at least one record")
    if errors or owner_row is None:
        raise ValidationFailed(errors)
    table = registry.table(obj)
    ids = sorted(set(record_ids))
    allowed = permissions.condition(session, actor, obj, table, "transfer")
    rows = session.execute(
        select(table.c.id, table.c.owner, allowed.label("allowed"))
        .where(table.c.id.in_(ids), table.c.deleted.is_(False),
               permissions.condition(session, actor, obj, table, "read"))).all()
    found = {r.id for r in rows}
    if len(found) != len(ids):
        missing = next(i for i in ids if i not in found)
        raise RecordNotFound(f"{obj.name} {missing} not found")
    refused = [r.id for r in rows if not r.allowed]
    if refused:
        raise PermissionDenied(Message("you may not transfer %(object)s %(id)d",
                                       object=named(obj.name, obj.label), id=refused[0]))
    approval_rules.refuse_if_any_locked(session, registry, obj, ids)
    result = TransferResult()
    previous = {r.id: r.owner for r in rows}
    _move(session, actor, obj, table, previous, new_owner, owner_row.department_id, old_owner,
          result)
    for name in dict.fromkeys(cascade):
        related, lookup = choices[name]
        rel_table = registry.table(related)
        pairs = [(pid, owner) for pid, owner in previous.items() if owner is not None]
        if not pairs:
            continue
        rel_rows = session.execute(
            select(rel_table.c.id, rel_table.c.owner).where(
                tuple_(rel_table.c[lookup], rel_table.c.owner).in_(pairs),
                rel_table.c.deleted.is_(False), rel_table.c.owner != new_owner,
                permissions.condition(session, actor, related, rel_table, "transfer"))).all()
        if rel_rows:
            approval_rules.refuse_if_any_locked(session, registry, related,
                                                [r.id for r in rel_rows])
            _move(session, actor, related, rel_table, {r.id: r.owner for r in rel_rows},
                  new_owner, owner_row.department_id, old_owner, result)
    _tell_new_owner(session, actor, new_owner, result)
    return result


def _tell_new_owner(session: Session, actor: Actor, new_owner: int,
                    result: TransferResult) -> None:
    """A notification per object and an "assigned" todo per record (one statement for
    all), unless the actor took the records themself; the records' open todos of others
    handed over (stage work) or closed (earlier assignments)."""
    t = sys_todo
    for name, ids in result.moved.items():
        notifications.notify(session, [new_owner], "record_transferred",
                             actor_id=actor.user_id, object_name=name,
                             record_id=ids[0] if len(ids) == 1 else None,
                             params={"count": len(ids)})
        others = (t.c.object == name, t.c.record_id.in_(ids), t.c.handled_at.is_(None),
                t.c.user_id != new_owner)
        # Stage work is the owner's; an earlier assignment is settled by this one.
        session.execute(update(t).where(*others, t.c.kind == "stage_work")
                        .values(user_id=new_owner))
        session.execute(update(t).where(*others, t.c.kind == "assigned")
                        .values(handled_at=clock.now()))
    if new_owner == actor.user_id:
        return
    todos.add(session, [{"user_id": new_owner, "kind": "assigned", "object": name,
                         "record_id": record_id, "params": {"by": actor.user_id}}
                        for name, ids in result.moved.items() for record_id in ids])


def _move(session: Session, actor: Actor, obj: ObjectDef, table, previous: dict[int, int],
          new_owner: int, department: int | None, old_owner: str,
          result: TransferResult) -> None:
    stamp = clock.now()
    changing = {i: o for i, o in previous.items() if o != new_owner}
    if not changing:
        return
    session.execute(update(table).where(table.c.id.in_(list(changing))).values(
        owner=new_owner, department=department, updated_at=stamp, updated_by=actor.user_id,
        version=table.c.version + 1))
    has_team = "team" in obj.features
    if has_team:
        m = sys_team_member
        session.execute(m.delete().where(m.c.object == obj.name, m.c.user_id == new_owner,
                                         m.c.record_id.in_(list(changing))))
        permissions.forget_access(session)
    for record_id, before in changing.items():
        audit.record(session, obj.name, record_id, "transfer", actor.user_id, stamp,
                     {"owner": [before, new_owner]})
        if has_team and old_owner != "remove" and before is not None:
            teams.put_member(session, obj, record_id, before, old_owner, None, actor)
    result.moved.setdefault(obj.name, []).extend(sorted(changing))
