"""The organisation: a department tree under one root (全公司), users in it, superiors.

Every change goes through here so the invariants hold: one root that cannot be
deleted, no cycles in the department tree or the superior chain, at least one active
super administrator, and records following their owner when the owner changes
department (a record's department is its owner's; department scopes read it).
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from metacrm import clock
from metacrm.engine.access import credentials, permissions, scopes
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.systables import (
    sys_department,
    sys_role,
    sys_user,
    sys_user_role,
)
from metacrm.metadata.flows import DEFAULT_ROLE, SUPER_ROLE
from metacrm.metadata.messages import Message

__all__ = ["BUILTIN_ROLES", "DEFAULT_ROLE", "Department", "MIN_PASSWORD", "ROOT_NAME",
           "SUPER_ROLE", "check_password", "check_placement", "create_department",
           "delete_department", "department_by_path", "departments", "is_super_admin",
           "names_upward", "random_password", "reset_password", "root_department_id",
           "set_active", "subtree_ids", "update_department", "update_user", "user_row"]

ROOT_NAME = "全公司"
MIN_PASSWORD = 8
BUILTIN_ROLES = (
    (SUPER_ROLE, {"en": "Super administrator", "zh": "超级管理员"}, True),
    (DEFAULT_ROLE, {"en": "Employee", "zh": "普通员工"}, False),
)



def root_department_id(session: Session) -> int | None:
    return session.execute(select(sys_department.c.id).where(
        sys_department.c.parent_id.is_(None)).order_by(sys_department.c.id).limit(1)).scalar()


# -- departments ------------------------------------------------------------------------
@dataclass(frozen=True)
class Department:
    id: int
    name: str
    parent_id: int | None
    head_id: int | None
    depth: int
    users: int


def departments(session: Session) -> list[Department]:
    """The whole tree, depth-first in position order, with each department's user count."""
    d = sys_department
    counts: dict[int | None, int] = dict(session.execute(
        select(sys_user.c.department_id, func.count())
        .group_by(sys_user.c.department_id)).all())
    rows = session.execute(select(d).order_by(d.c.position, d.c.id)).all()
    children: dict[int | None, list] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r)
    out: list[Department] = []

    def walk(parent: int | None, depth: int) -> None:
        for r in children.get(parent, []):
            out.append(Department(r.id, r.name, r.parent_id, r.head_id, depth,
                                  counts.get(r.id, 0)))
            walk(r.id, depth + 1)

    walk(None, 0)
    return out


def names_upward(session: Session, department_id: int | None) -> set[str]:
    """The names of a department and of those above it: what a business type offered to
    a department (by name, so templates stay portable) reaches."""
    d = sys_department
    names: set[str] = set()
    while department_id is not None:
        row = session.execute(select(d.c.name, d.c.parent_id).where(d.c.id == department_id)
                              ).first()
        if row is None or row.name in names:
            break
        names.add(row.name)
        department_id = row.parent_id
    return names


def subtree_ids(session: Session, department_id: int) -> set[int]:
    return set(session.execute(scopes.department_tree(department_id)).scalars())


def _check_department_values(session: Session, name: Any, parent_id: Any, head_id: Any,
                             errors: dict[str, Any]) -> None:
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or len(name) > 100):
        errors["name"] = Message("must be 1 to 100 characters")
    if parent_id is not None and session.execute(select(sys_department.c.id).where(
            sys_department.c.id == parent_id)).first() is None:
        errors["parent_id"] = Message("no department with id %(id)s", id=parent_id)
    if head_id is not None and _user_row(session, head_id) is None:
        errors["head_id"] = Message("no user with id %(id)s", id=head_id)


def create_department(session: Session, name: str, parent_id: int | None,
                      head_id: int | None = None) -> int:
    errors: dict[str, Any] = {}
    if parent_id is None:
        errors["parent_id"] = Message("is required: there is only one top department")
    _check_department_values(session, name, parent_id, head_id, errors)
    if errors:
        raise ValidationFailed(errors)
    position = session.execute(select(func.count()).select_from(sys_department).where(
        sys_department.c.parent_id == parent_id)).scalar_one()
    new_id = session.execute(insert(sys_department).returning(sys_department.c.id).values(
        name=name.strip(), parent_id=parent_id, head_id=head_id, position=position,
        created_at=clock.now())).scalar_one()
    permissions.forget_access(session)  # department subtrees read for this request change
    return new_id


def update_department(session: Session, department_id: int, *, name: str | None = None,
                      parent_id: int | None = None, head_id: int | None = None,
                      clear_head: bool = False) -> None:
    current = _department_row(session, department_id)
    errors: dict[str, Any] = {}
    _check_department_values(session, name, parent_id, head_id, errors)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name.strip()
    if parent_id is not None and parent_id != current.parent_id:
        if current.parent_id is None:
            errors["parent_id"] = Message("the top department cannot move")
        elif parent_id in subtree_ids(session, department_id):
            errors["parent_id"] = Message("a department cannot move under itself or one of "
                                          "its sub-departments")
        values["parent_id"] = parent_id
    if head_id is not None or clear_head:
        values["head_id"] = head_id
    if errors:
        raise ValidationFailed(errors)
    if values:
        session.execute(update(sys_department).where(sys_department.c.id == department_id)
                        .values(**values))
        permissions.forget_access(session)


def delete_department(session: Session, department_id: int) -> None:
    current = _department_row(session, department_id)
    if current.parent_id is None:
        raise ValidationFailed({"department": Message("the top department cannot be deleted")})
    children = session.execute(select(func.count()).select_from(sys_department).where(
        sys_department.c.parent_id == department_id)).scalar_one()
    members = session.execute(select(func.count()).select_from(sys_user).where(
        sys_user.c.department_id == department_id)).scalar_one()
    if children or members:
        raise ValidationFailed({"department": Message(
            "move its %(departments)d sub-department(s) and %(users)d user(s) first",
            departments=children, users=members)})
    session.execute(sys_department.delete().where(sys_department.c.id == department_id))
    permissions.forget_access(session)


def _department_row(session: Session, department_id: int):
    row = session.execute(select(sys_department).where(
        sys_department.c.id == department_id)).first()
    if row is None:
        raise RecordNotFound(f"department {department_id} not found")
    return row


# -- users ------------------------------------------------------------------------------
def _user_row(session: Session, user_id: int):
    return session.execute(select(sys_user).where(sys_user.c.id == user_id)).first()


def user_row(session: Session, user_id: int):
    row = _user_row(session, user_id)
    if row is None:
        raise RecordNotFound(f"user {user_id} not found")
    return row


def check_placement(session: Session, department_id: Any, superior_id: Any,
                    errors: dict[str, Any]) -> None:
    """A new user's department and superior must exist (a field error, not a database one)."""
    if department_id is not None and session.execute(select(sys_department.c.id).where(
            sys_department.c.id == department_id)).first() is None:
        errors["department_id"] = Message("no department with id %(id)s", id=department_id)
    if superior_id is not None and _user_row(session, superior_id) is None:
        errors["superior_id"] = Message("no user with id %(id)s", id=superior_id)


def check_password(password: Any, errors: dict[str, Any]) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        errors["password"] = Message("must be at least %(count)d characters", count=MIN_PASSWORD)


def update_user(session: Session, registry, user_id: int, *, display_name: str | None = None,
                email: str | None = None, department_id: int | None = None,
                superior_id: int | None = None, clear_superior: bool = False,
                language: str | None = None) -> None:
    """Change a user; moving department moves the user's records with them."""
    current = user_row(session, user_id)
    errors: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if display_name is not None:
        if not display_name.strip() or len(display_name) > 150:
            errors["display_name"] = Message("must be 1 to 150 characters")
        values["display_name"] = display_name.strip()
    if email is not None:
        values["email"] = email.strip() or None
    if language is not None:
        if language not in ("zh", "en"):
            errors["language"] = Message("must be zh or en")
        values["language"] = language
    if department_id is not None and department_id != current.department_id:
        if session.execute(select(sys_department.c.id).where(
                sys_department.c.id == department_id)).first() is None:
            errors["department_id"] = Message("no department with id %(id)s", id=department_id)
        values["department_id"] = department_id
    if superior_id is not None and superior_id != current.superior_id:
        if _user_row(session, superior_id) is None:
            errors["superior_id"] = Message("no user with id %(id)s", id=superior_id)
        elif superior_id in set(session.execute(scopes.subordinates(user_id)).scalars()):
            errors["superior_id"] = Message("a user's superior cannot be the user or one of "
                                            "their subordinates")
        values["superior_id"] = superior_id
    elif clear_superior:
        values["superior_id"] = None
    if errors:
        raise ValidationFailed(errors)
    if not values:
        return
    session.execute(update(sys_user).where(sys_user.c.id == user_id).values(**values))
    if "department_id" in values and registry is not None:
        for obj in registry.active_objects:
            table = registry.table(obj)
            session.execute(update(table).where(table.c.owner == user_id)
                            .values(department=department_id))
    permissions.forget_access(session)


def set_active(session: Session, user_id: int, active: bool) -> None:
    row = user_row(session, user_id)
    if not active and row.active and is_super_admin(session, user_id):
        _keep_one_super_admin(session, user_id)
    session.execute(update(sys_user).where(sys_user.c.id == user_id).values(active=active))
    if not active:  # enabling the user again must not bring back old sessions and tokens
        credentials.end_everything(session, user_id)


def reset_password(session: Session, user_id: int, password: str) -> None:
    user_row(session, user_id)
    errors: dict[str, Any] = {}
    check_password(password, errors)
    if errors:
        raise ValidationFailed(errors)
    session.execute(update(sys_user).where(sys_user.c.id == user_id)
                    .values(password_hash=generate_password_hash(password)))
    # whoever knew the old password may hold a session or token: none outlives it
    credentials.end_everything(session, user_id)


def is_super_admin(session: Session, user_id: int) -> bool:
    return session.execute(select(sys_user_role.c.user_id)
                           .join(sys_role, sys_role.c.id == sys_user_role.c.role_id)
                           .where(sys_user_role.c.user_id == user_id,
                                  sys_role.c.is_super.is_(True))).first() is not None


def _keep_one_super_admin(session: Session, leaving: int) -> None:
    """Refuse a change that would leave no active super administrator."""
    others = session.execute(
        select(func.count()).select_from(sys_user_role)
        .join(sys_role, sys_role.c.id == sys_user_role.c.role_id)
        .join(sys_user, sys_user.c.id == sys_user_role.c.user_id)
        .where(sys_role.c.is_super.is_(True), sys_user.c.active.is_(True),
               sys_user_role.c.user_id != leaving)).scalar_one()
    if not others:
        raise ValidationFailed({"roles": Message(
            "this is the last active super administrator; make someone else one first")})


def random_password() -> str:
    return secrets.token_urlsafe(9)


def department_by_path(session: Session) -> dict[str, int]:
    """Each department by its path of names below the root ("销售部/华东"), and by its
    plain name where that is unique; the root by its own name."""
    paths: dict[int, str] = {}
    out: dict[str, int] = {}
    tree = departments(session)
    for d in tree:  # parents come before their children
        path = "" if d.parent_id is None else f"{paths[d.parent_id]}/{d.name}".lstrip("/")
        paths[d.id] = path
        out[path or d.name] = d.id
    names = Counter(d.name for d in tree)
    for d in tree:
        if names[d.name] == 1:
            out.setdefault(d.name, d.id)
    return out
