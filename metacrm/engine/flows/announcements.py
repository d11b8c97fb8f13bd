"""Announcements (公告): admins tell every user. One row per announcement and a read mark
per user who read it, so publishing to ten thousand users writes one row. An expired
announcement is hidden from users and still listed for admins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.actor import Actor
from metacrm.engine.db import affected, conflict_insert
from metacrm.engine.errors import PermissionDenied, RecordNotFound, ValidationFailed
from metacrm.engine.systables import sys_announcement, sys_announcement_read
from metacrm.metadata.messages import Message

__all__ = ["BODY_LIMIT", "TITLE_LIMIT", "create", "delete_announcement", "for_admin",
           "for_user", "get", "mark_read", "unread_count", "unread_query", "update_announcement"]

TITLE_LIMIT = 200
BODY_LIMIT = 20_000
a, r = sys_announcement, sys_announcement_read


def _admin_only(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied(Message("only administrators publish announcements"))


def _values(title: Any, body: Any, expires_at: Any) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    title = title.strip() if isinstance(title, str) else ""
    body = body if isinstance(body, str) else None
    if not title:
        errors["title"] = Message("is required")
    elif len(title) > TITLE_LIMIT:
        errors["title"] = Message("is longer than %(limit)d characters", limit=TITLE_LIMIT)
    if body is None:
        errors["body"] = Message("is required")
    elif len(body) > BODY_LIMIT:
        errors["body"] = Message("is longer than %(limit)d characters", limit=BODY_LIMIT)
    if expires_at is not None and (not isinstance(expires_at, dt.datetime)
                                   or expires_at.tzinfo is None):
        errors["expires_at"] = Message("must be a date and time in ISO 8601")
    if errors:
        raise ValidationFailed(errors)
    return {"title": title, "body": (body or "").replace("\r\n", "\n"),
            "expires_at": expires_at}


def create(session: Session, actor: Actor, *, title: Any, body: Any,
           expires_at: dt.datetime | None = None) -> int:
    """A new announcement: every user's newest unread one until they read it (its author
    has read it)."""
    _admin_only(actor)
    values = _values(title, body, expires_at)
    stamp = clock.now()
    new_id = session.execute(insert(a).values(
        **values, created_by=actor.user_id, created_at=stamp).returning(a.c.id)).scalar_one()
    if actor.user_id is not None:
        session.execute(insert(r).values(announcement_id=new_id, user_id=actor.user_id,
                                         read_at=stamp))
    return new_id


def update_announcement(session: Session, actor: Actor, announcement_id: int, *, title: Any,
                        body: Any, expires_at: dt.datetime | None = None) -> None:
    """Corrects an announcement; who read it keeps their read mark."""
    _admin_only(actor)
    values = _values(title, body, expires_at)
    if not affected(session.execute(update(a).where(a.c.id == announcement_id)
                                    .values(**values))):
        raise RecordNotFound(f"announcement {announcement_id} not found")


def delete_announcement(session: Session, actor: Actor, announcement_id: int) -> None:
    _admin_only(actor)
    if not affected(session.execute(delete(a).where(a.c.id == announcement_id))):
        raise RecordNotFound(f"announcement {announcement_id} not found")


def get(session: Session, announcement_id: int) -> dict[str, Any]:
    row = session.execute(select(a).where(a.c.id == announcement_id)).first()
    if row is None:
        raise RecordNotFound(f"announcement {announcement_id} not found")
    return dict(row._mapping)


def for_admin(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Every announcement, expired ones too, newest first, with how many have read it."""
    readers = select(func.count()).select_from(r).where(r.c.announcement_id == a.c.id)
    stmt = select(a, readers.scalar_subquery().label("readers")) \
        .order_by(a.c.created_at.desc(), a.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in session.execute(stmt)]


def _live() -> Any:
    return or_(a.c.expires_at.is_(None), a.c.expires_at > clock.now())


def for_user(session: Session, user_id: int, *, unread_only: bool = False,
             limit: int = 50) -> list[dict[str, Any]]:
    """The announcements a user sees (not expired), newest first, each with the user's
    ``read_at`` (None: unread)."""
    stmt = select(a, r.c.read_at).select_from(a.outerjoin(r, and_(
        r.c.announcement_id == a.c.id, r.c.user_id == user_id))).where(_live()) \
        .order_by(a.c.created_at.desc(), a.c.id.desc()).limit(limit)
    if unread_only:
        stmt = stmt.where(r.c.read_at.is_(None))
    return [dict(row._mapping) for row in session.execute(stmt)]


def unread_query(user_id: int) -> Select[Any]:
    """How many announcements the user has not read: a statement the navigation's badge
    count can take in as a scalar subquery."""
    read = exists().where(r.c.announcement_id == a.c.id, r.c.user_id == user_id)
    return select(func.count()).select_from(a).where(_live(), ~read)


def unread_count(session: Session, user_id: int) -> int:
    return session.execute(unread_query(user_id)).scalar_one()


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None = None) -> int:
    """Marks the user's unread announcements read (those of ``ids``, or all he sees), in
    one statement; the number newly marked. Marking twice marks nothing more."""
    read = exists().where(r.c.announcement_id == a.c.id, r.c.user_id == user_id)
    unread = select(a.c.id, literal(user_id), literal(clock.now(), r.c.read_at.type)) \
        .where(_live(), ~read)
    if ids is not None:
        unread = unread.where(a.c.id.in_(list(ids)))
    stmt = conflict_insert(session, r).from_select(
        ["announcement_id", "user_id", "read_at"], unread).on_conflict_do_nothing() \
        .returning(r.c.announcement_id)
    return len(session.execute(stmt).all())
