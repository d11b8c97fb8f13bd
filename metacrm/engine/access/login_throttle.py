"""Repeated failed logins are slowed down: after a few, each attempt must wait longer.

Kept in the database, so every web process applies the same delay. The sign-in page and
the API's token endpoint count on the same key, so neither is a way around the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.systables import sys_login_failure

__all__ = ["clear", "key_for", "record_failure", "wait_seconds"]

FREE_ATTEMPTS = 3
MAX_DELAY = dt.timedelta(minutes=5)
FORGET_AFTER = dt.timedelta(minutes=30)



def key_for(username: str, address: str | None) -> str:
    """The counter of a user name tried from an address. Hashed: any text a client sends
    (very long, NUL bytes) fits the column on every database."""
    raw = f"{username.strip().lower()}|{address or ''}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def wait_seconds(session: Session, key: str) -> int:
    """How long ``key`` must wait before its next attempt (0: go ahead)."""
    row = session.execute(select(sys_login_failure).where(sys_login_failure.c.key == key)).first()
    if row is None or row.failures < FREE_ATTEMPTS or clock.now() - row.last_at > FORGET_AFTER:
        return 0
    delay = min(dt.timedelta(seconds=2 ** (row.failures - FREE_ATTEMPTS + 1)), MAX_DELAY)
    remaining = row.last_at + delay - clock.now()
    return max(0, int(remaining.total_seconds() + 0.999))


def _failure_upsert(dialect):
    """One statement, so failures at the same instant each count: the first inserts the
    row, the others add one to it under the row lock. A count older than FORGET_AFTER
    starts again at one."""
    table = sys_login_failure
    stmt = dialect.insert(table).values(key=bindparam("key"), failures=1,
                                        last_at=bindparam("now", type_=table.c.last_at.type))
    stale = table.c.last_at < bindparam("forgotten", type_=table.c.last_at.type)
    return stmt.on_conflict_do_update(index_elements=[table.c.key], set_={
        "failures": case((stale, 1), else_=table.c.failures + 1),
        "last_at": stmt.excluded.last_at,
    })


# Built once: constructing the statement costs more than running it.
_FAILURE_UPSERT = {"postgresql": _failure_upsert(postgresql), "sqlite": _failure_upsert(sqlite)}


def record_failure(session: Session, key: str) -> None:
    """Count a failed attempt of ``key``, in one atomic statement."""
    at = clock.now()
    session.execute(_FAILURE_UPSERT[session.get_bind().dialect.name],
                    {"key": key, "now": at, "forgotten": at - FORGET_AFTER})


def clear(session: Session, key: str) -> None:
    session.execute(delete(sys_login_failure).where(sys_login_failure.c.key == key))
