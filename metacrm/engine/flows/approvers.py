"""The approver catalogue: each approver type of a flow step, and how it finds its users.

Adding an approver type is adding an entry. A resolver returns active users' ids in the
order they approve; a sequential type (连续多级上级) makes them approve one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm.engine.systables import sys_department, sys_role, sys_user, sys_user_role
from metacrm.metadata.flows import SUPER_ROLE, StepDef

__all__ = ["APPROVER_TYPES", "Submitter", "administrators", "resolve"]

MAX_LEVELS = 10


@dataclass(frozen=True)
class Submitter:
    user_id: int
    department_id: int | None


Resolver = Callable[[Session, StepDef, Submitter, Sequence[int]], list[int]]


@dataclass(frozen=True)
class ApproverType:
    name: str
    resolve: Resolver
    sequential: bool = False  # each approves after the one before (all must approve)


def _active(session: Session, ids: Sequence[int]) -> list[int]:
    """The ids of active users, in the given order, each once."""
    if not ids:
        return []
    found = set(session.execute(select(sys_user.c.id).where(
        sys_user.c.id.in_(list(ids)), sys_user.c.active.is_(True))).scalars())
    return [i for i in dict.fromkeys(ids) if i in found]


def role_members(session: Session, role: str) -> list[int]:
    return list(session.execute(
        select(sys_user.c.id).join(sys_user_role, sys_user_role.c.user_id == sys_user.c.id)
        .join(sys_role, sys_role.c.id == sys_user_role.c.role_id)
        .where(sys_role.c.name == role, sys_user.c.active.is_(True))
        .order_by(sys_user.c.id)).scalars())


def administrators(session: Session) -> list[int]:
    """Who receives a step nobody else can approve (the empty-approver policy 'admin')."""
    return role_members(session, SUPER_ROLE)


def superiors(session: Session, user_id: int, levels: int = MAX_LEVELS) -> list[int]:
    """The user's superior, that one's superior, … up to ``levels`` (cycles stop it)."""
    out: list[int] = []
    current: int | None = user_id
    for _ in range(levels):
        current = session.execute(select(sys_user.c.superior_id).where(
            sys_user.c.id == current)).scalar()
        if current is None or current in out or current == user_id:
            break
        out.append(current)
    return out


def _users(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]) -> list[int]:
    rows = session.execute(select(sys_user.c.id, sys_user.c.username).where(
        sys_user.c.username.in_(step.approvers.users), sys_user.c.active.is_(True))).all()
    order = {name: i for i, name in enumerate(step.approvers.users)}
    return [r.id for r in sorted(rows, key=lambda r: order[r.username])]


def _role(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]) -> list[int]:
    return role_members(session, step.approvers.role or "")


def _superior(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]
              ) -> list[int]:
    level = step.approvers.level or 1
    chain = superiors(session, who.user_id, level)
    return _active(session, chain[level - 1:level]) if len(chain) >= level else []


def _department_head(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]
                     ) -> list[int]:
    """The head of the submitter's department (level 1) or of the Nth one up; a head
    submitting goes to the head above."""
    d = sys_department
    department = who.department_id
    heads: list[int] = []
    while department is not None and len(heads) < MAX_LEVELS:
        row = session.execute(select(d.c.head_id, d.c.parent_id).where(d.c.id == department)
                              ).first()
        if row is None:
            break
        if row.head_id is not None and row.head_id != who.user_id:
            heads.append(row.head_id)
        department = row.parent_id
    level = step.approvers.level or 1
    return _active(session, heads[level - 1:level])


def _superior_chain(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]
                    ) -> list[int]:
    """Superiors one after another, up to ``level`` levels or to the first holding
    ``role``, whichever comes first."""
    chain = _active(session, superiors(session, who.user_id, step.approvers.level or MAX_LEVELS))
    if step.approvers.role:
        holders = set(role_members(session, step.approvers.role))
        stop = next((i for i, u in enumerate(chain) if u in holders), None)
        if stop is not None:
            chain = chain[:stop + 1]
    return chain


def _chosen(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int]) -> list[int]:
    return _active(session, chosen)


APPROVER_TYPES: dict[str, ApproverType] = {t.name: t for t in (
    ApproverType("users", _users),
    ApproverType("role", _role),
    ApproverType("superior", _superior),
    ApproverType("department_head", _department_head),
    ApproverType("superior_chain", _superior_chain, sequential=True),
    ApproverType("submitter_chooses", _chosen),
)}


def resolve(session: Session, step: StepDef, who: Submitter, chosen: Sequence[int] = ()
            ) -> list[int]:
    return APPROVER_TYPES[step.approvers.type].resolve(session, step, who, chosen)
