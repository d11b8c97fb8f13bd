"""What the admin pages and the admin API do to the organisation: reads over users, and
edits that combine several access rules (profile, roles, activity, dimension values) into
one change.

Both front ends (HTML forms and JSON) call the same code. Only super administrators reach
these operations: the admin blueprints let no one else in.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from metacrm.engine.access import (
    dimensions,
    org,
    permissions,
    roles,
    scopes,
    user_import,
    users,
)
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.systables import sys_department, sys_role, sys_user, sys_user_role
from metacrm.metadata.messages import Message

PAGE_SIZE = 50


@dataclass
class UserFilter:
    """The users list's whitelisted filters; a department includes its sub-departments."""

    q: str = ""
    department_id: int | None = None
    active: bool | None = None
    page: int = 1


@dataclass
class UserPage:
    """One page of the users list, with the count the pager needs."""

    items: list[dict[str, Any]]
    total: int
    page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, -(-self.total // PAGE_SIZE))


def _user_select() -> Select:
    """A user with the names of their department and superior, as the list shows them."""
    u, sup, d = sys_user, sys_user.alias("superior"), sys_department
    return (select(u.c.id, u.c.username, u.c.display_name, u.c.email, u.c.active,
                   u.c.language, u.c.department_id, d.c.name.label("department"),
                   u.c.superior_id, sup.c.display_name.label("superior"))
            .select_from(u.outerjoin(d, d.c.id == u.c.department_id)
                         .outerjoin(sup, sup.c.id == u.c.superior_id)))


def list_users(session: Session, flt: UserFilter) -> UserPage:
    """Users by name, filtered, a page at a time, each with their roles (two queries)."""
    u = sys_user
    stmt = _user_select()
    if flt.q:
        needle = flt.q.lower()
        stmt = stmt.where(or_(func.lower(u.c.username).contains(needle, autoescape=True),
                              func.lower(u.c.display_name).contains(needle, autoescape=True)))
    if flt.department_id is not None:
        stmt = stmt.where(u.c.department_id.in_(scopes.department_tree(flt.department_id)))
    if flt.active is not None:
        stmt = stmt.where(u.c.active.is_(flt.active))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    page = max(1, flt.page)
    rows = session.execute(stmt.order_by(u.c.display_name, u.c.id)
                           .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    items = [dict(r._mapping) for r in rows]
    held = roles_by_user(session, [i["id"] for i in items])
    for item in items:
        item["roles"] = held.get(item["id"], [])
    return UserPage(items, total, page)


def roles_by_user(session: Session, user_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each user's roles in one query, so a page of users costs two queries, not one each."""
    if not user_ids:
        return {}
    rows = session.execute(select(sys_user_role.c.user_id, sys_role.c.name, sys_role.c.label)
                           .join(sys_role, sys_role.c.id == sys_user_role.c.role_id)
                           .where(sys_user_role.c.user_id.in_(user_ids))
                           .order_by(sys_role.c.id))
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.user_id, []).append({"name": r.name, "label": r.label})
    return out


def user_detail(session: Session, user_id: int) -> dict[str, Any]:
    """A user as the edit screen shows them: profile, roles and dimension values."""
    row = session.execute(_user_select().where(sys_user.c.id == user_id)).first()
    if row is None:
        raise RecordNotFound(f"user {user_id} not found")
    out = dict(row._mapping)
    out["roles"] = roles_by_user(session, [user_id]).get(user_id, [])
    out["dimensions"] = dimensions.user_values(session, user_id)
    return out


def all_users(session: Session) -> list[tuple[int, str, str]]:
    """Every user (active or not) for pickers: id, display name, username."""
    rows = session.execute(select(sys_user.c.id, sys_user.c.display_name, sys_user.c.username)
                           .order_by(sys_user.c.display_name, sys_user.c.id))
    return [tuple(r) for r in rows]


# -- writes -----------------------------------------------------------------------------
def create_user(session: Session, values: dict[str, Any]) -> int:
    """A new user from a form's or a request's values; errors name the fields."""
    return users.create_user(
        session, values.get("username") or "", values.get("password") or "",
        display_name=values.get("display_name") or None, email=values.get("email") or None,
        language=values.get("language") or "zh", department_id=values.get("department_id"),
        superior_id=values.get("superior_id"), roles=values.get("roles") or None)


def save_user(session: Session, registry, user_id: int, *, profile: dict[str, Any],
              role_names: list[str] | None = None, active: bool | None = None,
              dimension_values: dict[str, list[int]] | None = None) -> None:
    """One edit of a user through every rule that applies; all problems reported at once.

    The caller rolls back when this raises: some steps may have run.
    """
    org.user_row(session, user_id)
    steps: list[Callable[[], None]] = [
        lambda: org.update_user(session, registry, user_id, **profile)]
    if role_names is not None:
        steps.append(lambda: roles.set_user_roles(session, user_id, role_names))
    if active is not None:
        steps.append(lambda: org.set_active(session, user_id, active))
    known = {d["name"] for d in dimensions.all_dimensions(session)}
    errors: dict[str, Any] = {}
    for name, ids in (dimension_values or {}).items():
        if name not in known:
            errors[f"dimensions.{name}"] = Message("no dimension '%(value)s'", value=name[:63])
        else:
            steps.append(functools.partial(dimensions.set_user_values, session, user_id,
                                           name, ids))
    for step in steps:
        try:
            step()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)


def add_member(session: Session, role_name: str, user_id: int) -> None:
    """Give a user one more role, keeping the ones they have."""
    roles.set_user_roles(session, user_id, [*roles.roles_of(session, user_id), role_name])


def remove_member(session: Session, role_name: str, user_id: int) -> None:
    """Take one role from a user, keeping the others."""
    roles.set_user_roles(session, user_id,
                         [n for n in roles.roles_of(session, user_id) if n != role_name])


# -- roles grid -------------------------------------------------------------------------
def merged_grants(current: dict[tuple[str, str], str], shown: set[str],
                  wanted: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """The grid as saved: the cells on screen, plus the rows of objects not shown (archived
    ones), which the screen cannot change and a save must not wipe."""
    kept = {k: v for k, v in current.items() if k[0] not in shown}
    return {**kept, **wanted}


def merged_field_rules(current: dict[str, str], shown: set[str],
                       wanted: dict[str, str]) -> dict[str, str]:
    """Field rules as saved: those on screen, plus the archived fields' a save must keep."""
    return {**{k: v for k, v in current.items() if k not in shown}, **wanted}


# -- dimensions -------------------------------------------------------------------------
def dimension(session: Session, name: str) -> dict[str, Any]:
    """One dimension by name; an unknown name is a missing record, not an empty one."""
    found = next((d for d in dimensions.all_dimensions(session) if d["name"] == name), None)
    if found is None:
        raise RecordNotFound(f"dimension {name[:63]} not found")
    return found


def switched_on(registry, name: str) -> list[str]:
    """Objects that carry the dimension's field, not archived."""
    field_name = dimensions.field_name(name)
    return [o.name for o in registry.active_objects
            if (f := o.all_fields.get(field_name)) is not None and not f.archived]


def node_in(session: Session, name: str, node_id: Any) -> None:
    """A new node hangs under a node of the same dimension, never under another's."""
    if node_id not in {n.id for n in dimensions.nodes(session, name)}:
        raise ValidationFailed({"parent_id": Message(
            "no node %(id)s in dimension %(dimension)s", id=node_id, dimension=name)})


# -- explain ----------------------------------------------------------------------------
def explain(session: Session, registry, user_id: int, object_name: str, record_id: int,
            operation: str) -> permissions.Verdict:
    """Why a user may or may not do an operation on a record, for the admin to read."""
    if operation not in permissions.OPERATIONS:
        raise ValidationFailed({"operation": Message("unknown operation '%(value)s'",
                                                     value=str(operation)[:20])})
    actor = users.load_actor(session, user_id)
    if actor is None:
        raise ValidationFailed({"user_id": Message("no active user with id %(id)s",
                                                   id=user_id)})
    obj = registry.object(object_name)
    return permissions.explain(session, registry, actor, obj, record_id, operation)


# -- CSV import -------------------------------------------------------------------------
def import_template() -> str:
    """A CSV with the import's columns and one example row, for admins to fill in."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(user_import.IMPORT_COLUMNS)
    writer.writerow(["zhangsan", "张三", "zhangsan@example.com", org.ROOT_NAME, "", "member",
                     ""])
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, which Excel uses for Chinese CSV."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")
