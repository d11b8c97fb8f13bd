"""Saved views (场景): a user's named filter + columns + sort per object, shown as tabs.

Three built-ins exist for everyone (all, mine, recently created); a user may hide,
reorder or make default any view, built-in or their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.systables import sys_view

__all__ = ["SavedView", "default_view", "delete_view", "move", "save_view", "set_default",
           "set_hidden", "views_for"]


@dataclass(frozen=True)
class SavedView:
    key: str  # "all", "mine", "recent" or the id of a user's own view
    name: str
    builtin: bool
    filter: Any = None
    columns: tuple[str, ...] | None = None
    sort: str | None = None
    hidden: bool = False
    is_default: bool = False
    position: int = 0


def _builtins(actor: Actor) -> list[SavedView]:
    return [
        SavedView("all", "all", True),
        SavedView("mine", "mine", True, filter=[["owner", "eq", actor.user_id]]),
        SavedView("recent", "recent", True, filter=[["created_at", "last_n_days", 7]],
                  sort="-created_at"),
    ]


def views_for(session: Session, actor: Actor, object_name: str) -> list[SavedView]:
    """Built-ins and the user's own views, in the user's order (one query)."""
    rows = session.execute(select(sys_view).where(sys_view.c.user_id == actor.user_id,
                                                  sys_view.c.object == object_name)).all()
    prefs = {r.name: r for r in rows if r.builtin}
    out = []
    for i, view in enumerate(_builtins(actor)):
        pref = prefs.get(view.key)
        out.append(SavedView(view.key, view.name, True, view.filter, view.columns, view.sort,
                             hidden=bool(pref and pref.hidden),
                             is_default=bool(pref and pref.is_default),
                             position=pref.position if pref else i - 100))
    out.extend(SavedView(str(r.id), r.name, False, r.filter,
                         tuple(r.columns) if r.columns else None, r.sort, r.hidden,
                         r.is_default, r.position) for r in rows if not r.builtin)
    return sorted(out, key=lambda v: v.position)


def default_view(views: list[SavedView]) -> SavedView:
    return next((v for v in views if v.is_default and not v.hidden), views[0])


def save_view(session: Session, actor: Actor, object_name: str, name: str, *, filter: Any,
              columns: list[str] | None, sort: str | None) -> int:
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise ValidationFailed({"name": "must be 1 to 60 characters"})
    position = session.execute(select(func.coalesce(func.max(sys_view.c.position), 0)).where(
        sys_view.c.user_id == actor.user_id, sys_view.c.object == object_name)).scalar_one() + 1
    return session.execute(insert(sys_view).returning(sys_view.c.id).values(
        user_id=actor.user_id, object=object_name, name=name, builtin=False, filter=filter,
        columns=columns, sort=sort, position=position, hidden=False,
        is_default=False)).scalar_one()


def _row_for(session: Session, actor: Actor, object_name: str, key: str) -> int:
    """The row holding ``key``'s settings, created for a built-in on first change."""
    if key.isdigit():
        found = session.execute(select(sys_view.c.id).where(
            sys_view.c.id == int(key), sys_view.c.user_id == actor.user_id,
            sys_view.c.object == object_name)).scalar()
        if found is None:
            raise RecordNotFound(f"view {key} not found")
        return found
    if key not in {v.key for v in _builtins(actor)}:
        raise RecordNotFound(f"view {key} not found")
    found = session.execute(select(sys_view.c.id).where(
        sys_view.c.user_id == actor.user_id, sys_view.c.object == object_name,
        sys_view.c.builtin.is_(True), sys_view.c.name == key)).scalar()
    if found is None:
        position = [v.key for v in _builtins(actor)].index(key) - 100
        found = session.execute(insert(sys_view).returning(sys_view.c.id).values(
            user_id=actor.user_id, object=object_name, name=key, builtin=True,
            position=position, hidden=False, is_default=False)).scalar_one()
    return found


def set_hidden(session: Session, actor: Actor, object_name: str, key: str, hidden: bool) -> None:
    row = _row_for(session, actor, object_name, key)
    session.execute(update(sys_view).where(sys_view.c.id == row).values(hidden=hidden))


def set_default(session: Session, actor: Actor, object_name: str, key: str) -> None:
    row = _row_for(session, actor, object_name, key)
    session.execute(update(sys_view).where(sys_view.c.user_id == actor.user_id,
                                           sys_view.c.object == object_name)
                    .values(is_default=sys_view.c.id == row))


def move(session: Session, actor: Actor, object_name: str, key: str, offset: int) -> None:
    """Move a view left (-1) or right (+1) among the user's views."""
    views = views_for(session, actor, object_name)
    keys = [v.key for v in views]
    if key not in keys:
        raise RecordNotFound(f"view {key} not found")
    i = keys.index(key)
    j = max(0, min(len(keys) - 1, i + offset))
    keys.insert(j, keys.pop(i))
    for position, k in enumerate(keys):
        row = _row_for(session, actor, object_name, k)
        session.execute(update(sys_view).where(sys_view.c.id == row).values(position=position))


def delete_view(session: Session, actor: Actor, object_name: str, key: str) -> None:
    if not key.isdigit():
        raise ValidationFailed({"view": "built-in views can be hidden, not deleted"})
    row = _row_for(session, actor, object_name, key)
    session.execute(delete(sys_view).where(sys_view.c.id == row))
