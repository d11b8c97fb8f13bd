"""Roles: named sets of grants (object × operation → data scope) and field access rules.

A user holds several roles; their grants add up (the widest scope wins, see
``permissions``). The super-administrator role sees and does everything, cannot be
edited away, and is never taken from the last active super administrator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import org, permissions
from metacrm.engine.access.permissions import ALL_OBJECTS, FIELD_ACCESS, OPERATIONS, SCOPES
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.systables import (
    sys_department,
    sys_role,
    sys_role_field,
    sys_role_grant,
    sys_user,
    sys_user_role,
)
from metacrm.metadata.messages import Message, named

__all__ = ["Role", "all_roles", "create_role", "delete_role", "ensure_defaults", "ensure_role",
           "field_rules", "forget", "get_role", "grants", "members", "role_id", "roles_of",
           "set_field_rules", "set_grants", "set_user_roles", "update_role"]

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")



def forget(session: Session) -> None:
    permissions.forget_access(session)


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    label: dict[str, str]
    description: str | None
    is_super: bool
    members: int


def role_id(session: Session, name: str) -> int | None:
    return session.execute(select(sys_role.c.id).where(sys_role.c.name == name)).scalar()


def all_roles(session: Session) -> list[Role]:
    counts: dict[int, int] = dict(session.execute(select(sys_user_role.c.role_id, func.count())
                                  .group_by(sys_user_role.c.role_id)).all())
    rows = session.execute(select(sys_role).order_by(sys_role.c.is_super.desc(), sys_role.c.id))
    return [Role(r.id, r.name, r.label, r.description, r.is_super, counts.get(r.id, 0))
            for r in rows]


def get_role(session: Session, role: int) -> Role:
    found = next((r for r in all_roles(session) if r.id == role), None)
    if found is None:
        raise RecordNotFound(f"role {role} not found")
    return found


def _check_label(label: Any, errors: dict[str, Any]) -> None:
    if not isinstance(label, Mapping) or not all(
            isinstance(label.get(k), str) and label[k].strip() and len(label[k]) <= 60
            for k in ("en", "zh")):
        errors["label"] = Message("needs a name in both languages (en and zh), "
                                  "up to 60 characters each")


def create_role(session: Session, name: str, label: Mapping[str, str], *,
                description: str | None = None, is_super: bool = False) -> int:
    errors: dict[str, Any] = {}
    if not isinstance(name, str) or not ROLE_NAME.match(name):
        errors["name"] = Message("must start with a letter and use only a-z, 0-9 and _")
    elif role_id(session, name) is not None:
        errors["name"] = Message("'%(value)s' is already taken", value=name)
    _check_label(label, errors)
    if errors:
        raise ValidationFailed(errors)
    return session.execute(insert(sys_role).returning(sys_role.c.id).values(
        name=name, label={"en": label["en"].strip(), "zh": label["zh"].strip()},
        description=description, is_super=is_super, created_at=clock.now())).scalar_one()


def update_role(session: Session, role: int, *, label: Mapping[str, str] | None = None,
                description: str | None = None) -> None:
    get_role(session, role)
    values: dict[str, Any] = {}
    if label is not None:
        errors: dict[str, Any] = {}
        _check_label(label, errors)
        if errors:
            raise ValidationFailed(errors)
        values["label"] = {"en": label["en"].strip(), "zh": label["zh"].strip()}
    if description is not None:
        values["description"] = description.strip() or None
    if values:
        session.execute(update(sys_role).where(sys_role.c.id == role).values(**values))
        forget(session)


def delete_role(session: Session, role: int) -> None:
    """Delete a role; members it was the only role of get the employee role instead."""
    found = get_role(session, role)
    if found.name in (org.SUPER_ROLE, org.DEFAULT_ROLE):
        raise ValidationFailed({"role": Message("a built-in role cannot be deleted")})
    ur = sys_user_role
    others = select(ur.c.user_id).where(ur.c.role_id != role)
    stranded = list(session.execute(select(ur.c.user_id).where(
        ur.c.role_id == role, ur.c.user_id.not_in(others))).scalars())
    session.execute(delete(sys_role).where(sys_role.c.id == role))
    if stranded:
        fallback = role_id(session, org.DEFAULT_ROLE)
        session.execute(insert(ur), [{"user_id": u, "role_id": fallback} for u in stranded])
    forget(session)


# -- grants -----------------------------------------------------------------------------
def grants(session: Session, role: int) -> dict[tuple[str, str], str]:
    rows = session.execute(select(sys_role_grant.c.object, sys_role_grant.c.operation,
                                  sys_role_grant.c.scope).where(sys_role_grant.c.role_id == role))
    return {(r.object, r.operation): r.scope for r in rows}


def set_grants(session: Session, role: int, wanted: Mapping[tuple[str, str], str],
               registry) -> None:
    """Replace the role's grid. A cell left out of ``wanted`` falls back to the '*' row."""
    errors: dict[str, Any] = {}
    known = set(registry.objects) if registry is not None else None
    for (object_name, operation), scope in wanted.items():
        cell = f"{object_name}.{operation}"
        if object_name != ALL_OBJECTS and known is not None and object_name not in known:
            errors[cell] = Message("no object named '%(value)s'", value=str(object_name)[:63])
        elif operation not in OPERATIONS:
            errors[cell] = Message("unknown operation '%(value)s'", value=str(operation)[:20])
        elif scope not in SCOPES:
            errors[cell] = Message("unknown scope '%(value)s'", value=str(scope)[:30])
    if errors:
        raise ValidationFailed(errors)
    if _is_super(session, role):
        raise ValidationFailed({"role": Message("the super administrator role always has "
                                                "every permission")})
    session.execute(delete(sys_role_grant).where(sys_role_grant.c.role_id == role))
    if wanted:
        session.execute(insert(sys_role_grant), [
            {"role_id": role, "object": o, "operation": op, "scope": scope}
            for (o, op), scope in wanted.items()])
    forget(session)


def _is_super(session: Session, role: int) -> bool:
    return bool(session.execute(select(sys_role.c.is_super).where(sys_role.c.id == role))
                .scalar())


def field_rules(session: Session, role: int, object_name: str) -> dict[str, str]:
    rows = session.execute(select(sys_role_field.c.field, sys_role_field.c.access).where(
        sys_role_field.c.role_id == role, sys_role_field.c.object == object_name))
    return dict(rows.all())


def set_field_rules(session: Session, role: int, obj, wanted: Mapping[str, str]) -> None:
    """Replace the role's field access on one object; 'editable' is the default."""
    errors: dict[str, Any] = {}
    for name, access in wanted.items():
        f = obj.all_fields.get(name)
        if f is None:
            errors[str(name)[:63]] = Message("is not a field of %(object)s",
                                                       object=named(obj.name, obj.label))
        elif access not in FIELD_ACCESS:
            errors[name] = Message("must be hidden, read_only or editable")
        elif access == "hidden" and name == obj.title_field:
            errors[name] = Message("the title field cannot be hidden")
        elif access != "editable" and f.required and f.default is None:
            errors[name] = Message("a required field without a default must stay editable, "
                                   "or nobody with this role could create a record")
    if errors:
        raise ValidationFailed(errors)
    session.execute(delete(sys_role_field).where(sys_role_field.c.role_id == role,
                                                 sys_role_field.c.object == obj.name))
    rows = [{"role_id": role, "object": obj.name, "field": n, "access": a}
            for n, a in wanted.items() if a != "editable"]
    if rows:
        session.execute(insert(sys_role_field), rows)
    forget(session)


# -- members ----------------------------------------------------------------------------
def roles_of(session: Session, user_id: int) -> list[str]:
    return list(session.execute(select(sys_role.c.name).join(
        sys_user_role, sys_user_role.c.role_id == sys_role.c.id)
        .where(sys_user_role.c.user_id == user_id).order_by(sys_role.c.id)).scalars())


def set_user_roles(session: Session, user_id: int, names: Iterable[str]) -> None:
    """Give a user exactly these roles; at least one, and never strand the last admin."""
    names = list(dict.fromkeys(names))
    org.user_row(session, user_id)
    ids = dict(session.execute(select(sys_role.c.name, sys_role.c.id)
                               .where(sys_role.c.name.in_(names))).all())
    missing = [n for n in names if n not in ids]
    if missing:
        raise ValidationFailed({"roles": Message("no role '%(value)s'", value=missing[0])})
    if not names:
        raise ValidationFailed({"roles": Message("every user needs at least one role")})
    if org.SUPER_ROLE not in names and org.is_super_admin(session, user_id):
        org._keep_one_super_admin(session, user_id)
    session.execute(delete(sys_user_role).where(sys_user_role.c.user_id == user_id))
    session.execute(insert(sys_user_role), [{"user_id": user_id, "role_id": ids[n]}
                                            for n in names])
    forget(session)


def members(session: Session, role: int) -> list[tuple[int, str]]:
    rows = session.execute(select(sys_user.c.id, sys_user.c.display_name)
                           .join(sys_user_role, sys_user_role.c.user_id == sys_user.c.id)
                           .where(sys_user_role.c.role_id == role)
                           .order_by(sys_user.c.display_name))
    return [(r.id, r.display_name) for r in rows]


def ensure_defaults(session: Session) -> None:
    """The root department and the built-in roles; idempotent."""
    if org.root_department_id(session) is None:
        session.execute(insert(sys_department).values(name=org.ROOT_NAME, parent_id=None,
                                                      position=0, created_at=clock.now()))
    for name, label, is_super in org.BUILTIN_ROLES:
        if role_id(session, name) is None:
            role = create_role(session, name, label, is_super=is_super)
            if name == org.DEFAULT_ROLE:
                set_grants(session, role, {(permissions.ALL_OBJECTS, op): "own"
                                           for op in permissions.OPERATIONS}, None)


def ensure_role(session: Session, name: str, label: dict) -> None:
    """A role exists with this name (a template's flows name it); grants are the admin's."""
    if role_id(session, name) is None:
        create_role(session, name, label)
