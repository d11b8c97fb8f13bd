"""Repeated failed logins are slowed down: after a few, each attempt must wait longer.

Kept in the database, so every web process applies the same delay. The sign-in page and
the API's token endpoint count on the same key, so neither is a way around the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from metacrm.engine.systables import sys_login_failure

__all__ = ["clear", "key_for", "record_failure", "wait_seconds"]

FREE_ATTEMPTS = 3
MAX_DELAY = dt.timedelta(minutes=5)
FORGET_AFTER = dt.timedelta(minutes=30)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key_for(username: str, address: str | None) -> str:
    """The counter of a user name tried from an address. Hashed: any text a client sends
    (very long, NUL bytes) fits the column on every database."""
    raw = f"{username.strip().lower()}|{address or ''}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def wait_seconds(session: Session, key: str) -> int:
    """How long ``key`` must wait before its next attempt (0: go ahead)."""
    row = session.execute(select(sys_login_failure).where(sys_login_failure.c.key == key)).first()
    if row is None or row.failures < FREE_ATTEMPTS or now() - row.last_at > FORGET_AFTER:
        return 0
    delay = min(dt.timedelta(seconds=2 ** (row.failures - FREE_ATTEMPTS + 1)), MAX_DELAY)
    remaining = row.last_at + delay - now()
    return max(0, int(remaining.total_seconds() + 0.999))


def record_failure(session: Session, key: str) -> None:
    table = sys_login_failure
    row = session.execute(select(table.c.failures, table.c.last_at)
                          .where(table.c.key == key)).first()
    if row is None:
        session.execute(insert(table).values(key=key, failures=1, last_at=now()))
    else:
        failures = 1 if now() - row.last_at > FORGET_AFTER else row.failures + 1
        session.execute(update(table).where(table.c.key == key)
                        .values(failures=failures, last_at=now()))


def clear(session: Session, key: str) -> None:
    session.execute(delete(sys_login_failure).where(sys_login_failure.c.key == key))
