"""In-app notifications: approvals submitted, approved, rejected and withdrawn, records
transferred. Written in the transaction of the change they report, so a rolled-back
change notifies nobody. The engine stores the kind and its parameters; the UI words them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected
from metacrm.engine.systables import sys_notification

__all__ = ["close_requests", "listing", "mark_read", "notify", "unread_count"]

KINDS = ("approval_submitted", "approval_approved", "approval_rejected",
         "approval_withdrawn", "approval_handed_over", "record_transferred", "automation")
# The kinds that ask the user to decide an approval: done once he no longer can.
REQUESTS = ("approval_submitted", "approval_handed_over")



def notify(session: Session, user_ids: Iterable[int | None], kind: str, *,
           actor_id: int | None = None, object_name: str | None = None,
           record_id: int | None = None, approval_id: int | None = None,
           params: dict[str, Any] | None = None) -> None:
    """One notification per user, none to the actor who caused it."""
    assert kind in KINDS, kind
    stamp = clock.now()
    rows = [{"user_id": u, "kind": kind, "object": object_name, "record_id": record_id,
             "approval_id": approval_id, "actor_id": actor_id, "params": params or {},
             "created_at": stamp} for u in dict.fromkeys(user_ids)
            if u is not None and u != actor_id]
    if rows:
        session.execute(insert(sys_notification), rows)


def close_requests(session: Session, approval_id: int, still_asked: Select[Any]) -> int:
    """Mark read the approval's unread requests to decide it, except those of the users
    ``still_asked`` selects (one column of user ids)."""
    n = sys_notification
    return affected(session.execute(update(n).where(
        n.c.approval_id == approval_id, n.c.kind.in_(REQUESTS), n.c.read_at.is_(None),
        n.c.user_id.not_in(still_asked))
        .values(read_at=clock.now())))


def unread_count(session: Session, user_id: int) -> int:
    n = sys_notification
    return session.execute(select(func.count()).select_from(n).where(
        n.c.user_id == user_id, n.c.read_at.is_(None))).scalar_one()


def listing(session: Session, user_id: int, *, unread_only: bool = False, limit: int = 50,
            before: int | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before`` pages on by id."""
    n = sys_notification
    stmt = select(n).where(n.c.user_id == user_id).order_by(n.c.id.desc()).limit(limit)
    if unread_only:
        stmt = stmt.where(n.c.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(n.c.id < before)
    return [dict(r._mapping) for r in session.execute(stmt)]


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None = None,
              read: bool = True) -> int:
    """Mark the user's notifications (all of them when ``ids`` is None) read or unread."""
    n = sys_notification
    stmt = update(n).where(n.c.user_id == user_id)
    if ids is not None:
        stmt = stmt.where(n.c.id.in_(list(ids)))
    stmt = stmt.where(n.c.read_at.is_(None)) if read else stmt.where(n.c.read_at.is_not(None))
    return affected(session.execute(stmt.values(read_at=clock.now() if read else None)))
