"""The todo centre (待办): pending approvals, records assigned to the user and stage work
due. Approvals are the user's active approval tasks; the other two are rows a change
writes (a transfer, a record entering a stage with work) and that are marked handled by
the user, or by the engine when the work is ticked or the record leaves the stage.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.systables import sys_approval_task, sys_notification, sys_todo

__all__ = ["KINDS", "add", "close", "counts", "handle", "open_todos"]

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


def open_todos(session: Session, user_id: int, *, kind: str | None = None,
               handled: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """The user's todos, those due first (then the newest); handled ones on request."""
    t = sys_todo
    stmt = select(t).where(t.c.user_id == user_id)
    stmt = stmt.where(t.c.handled_at.is_not(None) if handled else t.c.handled_at.is_(None))
    if kind is not None:
        stmt = stmt.where(t.c.kind == kind)
    order = (t.c.handled_at.desc(),) if handled else (t.c.due_at.is_(None), t.c.due_at,
                                                      t.c.id.desc())
    return [dict(r._mapping) for r in session.execute(stmt.order_by(*order, t.c.id.desc())
                                                      .limit(limit))]


def counts(session: Session, user_id: int) -> dict[str, int]:
    """The navigation's badges, in one statement: open approval tasks, open todos,
    unread notifications."""
    a, t, n = sys_approval_task, sys_todo, sys_notification
    row = session.execute(select(
        select(func.count()).select_from(a).where(a.c.user_id == user_id,
                                                  a.c.status == "active").scalar_subquery(),
        select(func.count()).select_from(t).where(t.c.user_id == user_id,
                                                  t.c.handled_at.is_(None)).scalar_subquery(),
        select(func.count()).select_from(n).where(n.c.user_id == user_id,
                                                  n.c.read_at.is_(None)).scalar_subquery(),
    )).one()
    return {"approvals": row[0], "todos": row[0] + row[1], "notifications": row[2]}
