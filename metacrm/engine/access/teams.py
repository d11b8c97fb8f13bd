"""Team members (团队成员) of a record: read-only or read-write, optionally until a date.

Only objects with the ``team`` feature have teams. Whoever may edit the record through
a role (its owner, or a manager whose scope covers it) manages the team; a member may
leave on their own. The permission condition reads these rows, so members see the
record in their lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import audit
from metacrm.engine.access import permissions
from metacrm.engine.actor import Actor
from metacrm.engine.db import affected
from metacrm.engine.errors import PermissionDenied, RecordNotFound, ValidationFailed
from metacrm.engine.systables import sys_team_member, sys_user
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["add_member", "may_manage", "members", "put_member", "remove_member"]

ACCESS_LEVELS = ("read", "write")



@dataclass(frozen=True)
class Member:
    user_id: int
    display_name: str
    access: str
    expires_on: dt.date | None
    is_owner: bool = False

    @property
    def expired(self) -> bool:
        return self.expires_on is not None and self.expires_on < clock.today()


def _require_team(obj: ObjectDef) -> None:
    if "team" not in obj.features:
        raise PermissionDenied(Message("%(object)s records have no team members",
                                       object=named(obj.name, obj.label)))


def _record(session: Session, registry, actor: Actor, obj: ObjectDef, record_id: int) -> dict:
    """The record if the actor may read it (else 404), with whether they may manage it."""
    table = registry.table(obj)
    manage = permissions.parts(session, actor, obj, table, "edit")
    manage_roles = permissions.Parts(manage.grants, manage.dimensions, None,
                                     manage.unrestricted).condition()
    row = session.execute(select(table.c.id, table.c.owner, manage_roles.label("manage"))
                          .where(table.c.id == record_id, table.c.deleted.is_(False),
                                 permissions.condition(session, actor, obj, table, "read"))
                          ).first()
    if row is None:
        raise RecordNotFound(f"{obj.name} {record_id} not found")
    return dict(row._mapping)


def members(session: Session, registry, actor: Actor, obj: ObjectDef,
            record_id: int) -> list[Member]:
    """The owner first, then the members by name."""
    _require_team(obj)
    record = _record(session, registry, actor, obj, record_id)
    m = sys_team_member
    rows = session.execute(
        select(m.c.user_id, sys_user.c.display_name, m.c.access, m.c.expires_on)
        .join(sys_user, sys_user.c.id == m.c.user_id)
        .where(m.c.object == obj.name, m.c.record_id == record_id)
        .order_by(sys_user.c.display_name))
    owner = session.execute(select(sys_user.c.display_name).where(
        sys_user.c.id == record["owner"])).scalar() if record["owner"] else None
    out = [Member(record["owner"], owner, "owner", None, True)] if owner else []
    out.extend(Member(r.user_id, r.display_name, r.access, r.expires_on) for r in rows)
    return out


def may_manage(session: Session, registry, actor: Actor, obj: ObjectDef,
               record_id: int) -> bool:
    return bool(_record(session, registry, actor, obj, record_id)["manage"])


def _check(session: Session, access: Any, expires_on: Any, user_id: Any) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if access not in ACCESS_LEVELS:
        errors["access"] = Message("must be read or write")
    if expires_on is not None and not isinstance(expires_on, dt.date):
        errors["expires_on"] = Message("must be a date")
    elif expires_on is not None and expires_on < clock.today():
        errors["expires_on"] = Message("is in the past")
    if session.execute(select(sys_user.c.id).where(sys_user.c.id == user_id,
                                                   sys_user.c.active.is_(True))).first() is None:
        errors["user_id"] = Message("no active user with id %(id)s", id=user_id)
    return errors


def add_member(session: Session, registry, actor: Actor, obj: ObjectDef, record_id: int,
               user_id: int, access: str = "read", expires_on: dt.date | None = None) -> None:
    """Add or change a member; the record's owner cannot also be a member."""
    _require_team(obj)
    record = _record(session, registry, actor, obj, record_id)
    if not record["manage"]:
        raise PermissionDenied(Message("you may not change the team of this record"))
    errors = _check(session, access, expires_on, user_id)
    if user_id == record["owner"]:
        errors["user_id"] = Message("is the owner of the record")
    if errors:
        raise ValidationFailed(errors)
    put_member(session, obj, record_id, user_id, access, expires_on, actor)
    audit.record(session, obj.name, record_id, "team", actor.user_id, clock.now(),
                 {"team": [None, {"user": user_id, "access": access,
                                  "expires_on": expires_on.isoformat() if expires_on
                                  else None}]})


def put_member(session: Session, obj: ObjectDef, record_id: int, user_id: int, access: str,
               expires_on: dt.date | None, actor: Actor) -> None:
    """Insert or update one membership row (no checks: callers have made them)."""
    m = sys_team_member
    values = {"access": access, "expires_on": expires_on, "added_by": actor.user_id,
              "added_at": clock.now()}
    changed = session.execute(update(m).where(m.c.object == obj.name,
                                              m.c.record_id == record_id,
                                              m.c.user_id == user_id).values(**values))
    if affected(changed) == 0:
        session.execute(insert(m).values(object=obj.name, record_id=record_id,
                                         user_id=user_id, **values))
    permissions.forget_access(session)  # the users' team records were read for this request


def remove_member(session: Session, registry, actor: Actor, obj: ObjectDef, record_id: int,
                  user_id: int) -> None:
    """Managers remove anyone; a member may remove themselves (leave the team)."""
    _require_team(obj)
    record = _record(session, registry, actor, obj, record_id)
    if not record["manage"] and user_id != actor.user_id:
        raise PermissionDenied(Message("you may not change the team of this record"))
    m = sys_team_member
    gone = session.execute(delete(m).where(m.c.object == obj.name, m.c.record_id == record_id,
                                           m.c.user_id == user_id))
    if affected(gone) == 0:
        raise RecordNotFound(f"user {user_id} is not a member of {obj.name} {record_id}")
    permissions.forget_access(session)
    audit.record(session, obj.name, record_id, "team", actor.user_id, clock.now(),
                 {"team": [{"user": user_id}, None]})
