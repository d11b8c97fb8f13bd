"""In-app notifications: approvals, transfers, automations, reminders. Written in the
transaction of the change they report, so a rolled-back change notifies nobody.

The kinds are a catalogue: each says which group it belongs to (the page filters by
group) and whether it asks the user to decide an approval. The engine stores the kind and
its parameters; the UI words the kinds it knows. Kinds whose text comes from metadata
(automations, reminders) carry it, already rendered, as ``params["message"] = {en, zh}``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected, conflict_insert
from metacrm.engine.systables import sys_notification
from metacrm.metadata.labels import Label

__all__ = ["GROUPS", "KINDS", "REQUESTS", "Kind", "close_requests", "kinds_of", "listing",
           "mark_read", "message_of", "notify", "unread_count"]


@dataclass(frozen=True)
class Kind:
    name: str
    group: str                  # one of GROUPS: what the notifications page filters by
    asks: bool = False          # asks the user to decide an approval (closed once he can't)
    from_metadata: bool = False  # worded by params["message"], rendered when written


GROUPS = ("approvals", "transfers", "automations", "reminders")

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("approval_submitted", "approvals", asks=True),
    Kind("approval_approved", "approvals"),
    Kind("approval_rejected", "approvals"),
    Kind("approval_withdrawn", "approvals"),
    Kind("approval_handed_over", "approvals", asks=True),
    Kind("record_transferred", "transfers"),
    Kind("automation", "automations", from_metadata=True),
    Kind("reminder", "reminders", from_metadata=True),
)}
# The kinds that ask the user to decide an approval: done once he no longer can.
REQUESTS = tuple(k.name for k in KINDS.values() if k.asks)


def kinds_of(group: str) -> tuple[str, ...]:
    return tuple(k.name for k in KINDS.values() if k.group == group)


def message_of(params: dict[str, Any] | None) -> Label | None:
    """The text a notification carries (``params["message"]``), each language falling
    back on the other only when it is missing."""
    raw = (params or {}).get("message")
    if not isinstance(raw, dict):
        return None
    en, zh = (text if isinstance(text := raw.get(lang), str) else "" for lang in ("en", "zh"))
    if not en and not zh:
        return None
    return Label(en=en or zh, zh=zh or en)


def notify(session: Session, user_ids: Iterable[int | None], kind: str, *,
           actor_id: int | None = None, object_name: str | None = None,
           record_id: int | None = None, approval_id: int | None = None,
           params: dict[str, Any] | None = None, dedupe_key: str | None = None) -> int:
    """One notification per user, none to the actor who caused it; the number written.

    With ``dedupe_key`` a user already holding a notification of that key gets no other,
    so a job that runs twice (or again after being killed) notifies nobody twice."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if KINDS[kind].from_metadata and message_of(params) is None:
        raise ValueError(f"a {kind} notification needs params['message'] = {{en, zh}}")
    stamp = clock.now()
    rows = [{"user_id": u, "kind": kind, "object": object_name, "record_id": record_id,
             "approval_id": approval_id, "actor_id": actor_id, "params": params or {},
             "created_at": stamp, "dedupe_key": dedupe_key} for u in dict.fromkeys(user_ids)
            if u is not None and u != actor_id]
    if not rows:
        return 0
    if dedupe_key is None:
        session.execute(insert(sys_notification), rows)
        return len(rows)
    n = sys_notification
    stmt = conflict_insert(session, n).on_conflict_do_nothing(
        index_elements=[n.c.user_id, n.c.dedupe_key]).returning(n.c.id)
    return len(session.execute(stmt, rows).all())  # one statement, the new rows' ids


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
            before: int | None = None,
            kinds: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before`` pages on by id; ``kinds`` keeps those kinds only."""
    n = sys_notification
    stmt = select(n).where(n.c.user_id == user_id).order_by(n.c.id.desc()).limit(limit)
    if unread_only:
        stmt = stmt.where(n.c.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(n.c.id < before)
    if kinds is not None:
        stmt = stmt.where(n.c.kind.in_(list(kinds)))
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
