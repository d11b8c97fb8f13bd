"""The todo centre (待办): pending approvals, records assigned to the user and stage work
due. Approvals are the user's active approval tasks; the other two are rows a change
writes (a transfer, a record entering a stage with work) and that are marked handled by
the user, or by the engine when the work is ticked or the record leaves the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.flows import announcements
from metacrm.engine.systables import sys_approval_task, sys_notification, sys_todo

__all__ = ["KINDS", "add", "close", "counts", "handle", "handle_many", "open_todos"]

# The kinds of rows this table holds; the todo centre's catalogue (todo_kinds) lists
# them with approvals and the metadata's reminder rules.
KINDS = ("assigned", "stage_work")

def add(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows of ``user_id, kind, object, record_id`` and optionally ``stage, item, params,
    due_at``."""
    stamp = clock.now()
    rows = [{"stage": None, "item": None, "params": {}, "due_at": None, **r,
             "created_at": stamp} for r in rows if r.get("user_id") is not None]
    for row in rows:
        assert row["kind"] in KINDS, row["kind"]
    if rows:
        session.execute(insert(sys_todo), rows)


def close(session: Session, object_name: str, record_id: int, *, kind: str,
          stage: str | None = None, item: str | None = None) -> None:
    """The engine marks todos handled: a stage's work when the record leaves the stage
    (``item`` None) or when one item is ticked."""
    t = sys_todo
    stmt = update(t).where(t.c.object == object_name, t.c.record_id == record_id,
                           t.c.kind == kind, t.c.handled_at.is_(None))
    if stage is not None:
        stmt = stmt.where(t.c.stage == stage)
    if item is not None:
        stmt = stmt.where(t.c.item == item)
    session.execute(stmt.values(handled_at=clock.now()))


def handle(session: Session, user_id: int, todo_id: int, handled: bool = True) -> None:
    """The user marks one of their todos handled (or not yet handled)."""
    t = sys_todo
    done = affected(session.execute(update(t).where(t.c.id == todo_id, t.c.user_id == user_id)
                                    .values(handled_at=clock.now() if handled else None)))
    if not done:
        raise RecordNotFound(f"todo {todo_id} not found")


def handle_many(session: Session, user_ids: Sequence[int], kind: str, todo_ids: Sequence[int],
                handled: bool = True) -> int:
    """Todos of these users (the user, or a manager's subordinates) marked handled, or
    open again, in one statement; none of theirs among the ids: RecordNotFound."""
    t = sys_todo
    done = affected(session.execute(update(t).where(
        t.c.id.in_(list(todo_ids)), t.c.user_id.in_(list(user_ids)), t.c.kind == kind,
        t.c.handled_at.is_(None) if handled else t.c.handled_at.is_not(None))
        .values(handled_at=clock.now() if handled else None)))
    if not done:
        raise RecordNotFound("no such todo among those asked about")
    return done


def open_todos(session: Session, user_id: int | Sequence[int], *, kind: str | None = None,
               handled: bool = False, limit: int = 200, offset: int = 0
               ) -> list[dict[str, Any]]:
    """The user's (or users') todos, those due first (then the newest); handled ones on
    request."""
    t = sys_todo
    users = [user_id] if isinstance(user_id, int) else list(user_id)
    stmt = select(t).where(t.c.user_id.in_(users) if len(users) > 1 else
                           t.c.user_id == users[0])
    stmt = stmt.where(t.c.handled_at.is_not(None) if handled else t.c.handled_at.is_(None))
    if kind is not None:
        stmt = stmt.where(t.c.kind == kind)
    order = (t.c.handled_at.desc(),) if handled else (t.c.due_at.is_(None), t.c.due_at,
                                                      t.c.id.desc())
    return [dict(r._mapping) for r in session.execute(stmt.order_by(*order, t.c.id.desc())
                                                      .offset(offset).limit(limit))]


def counts(session: Session, user_id: int, extra: Sequence[Any] = ()) -> dict[str, int]:
    """The navigation's badges, in one statement: open approval tasks, open todos,
    unread notifications and announcements; ``extra``: more counts of todos (the due
    items of the reminder rules that count in the badge), as scalar subqueries."""
    a, t, n = sys_approval_task, sys_todo, sys_notification
    row = session.execute(select(
        select(func.count()).select_from(a).where(a.c.user_id == user_id,
                                                  a.c.status == "active").scalar_subquery(),
        select(func.count()).select_from(t).where(t.c.user_id == user_id,
                                                  t.c.handled_at.is_(None)).scalar_subquery(),
        select(func.count()).select_from(n).where(n.c.user_id == user_id,
                                                  n.c.read_at.is_(None)).scalar_subquery(),
        announcements.unread_query(user_id).scalar_subquery(),
        *extra,
    )).one()
    return {"approvals": row[0], "todos": row[0] + row[1] + sum(row[4:]),
            "notifications": row[2], "announcements": row[3]}
