"""The audit log: every change with its field-level before/after, who and when.

Entries are buffered on the session and written with one executemany just before the
transaction commits (or before the log is read), so auditing costs one statement per
transaction instead of one per record, and a rolled-back change leaves no entry.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from metacrm.engine.systables import sys_audit

if TYPE_CHECKING:
    import psycopg

__all__ = ["history", "record"]

BUFFER_KEY = "metacrm.audit_buffer"


def record(session: Session, obj_name: str, record_id: int, action: str, actor_id: int | None,
           at: dt.datetime, changes: dict[str, list[Any]]) -> None:
    session.info.setdefault(BUFFER_KEY, []).append(
        {"object": obj_name, "record_id": record_id, "action": action, "actor_id": actor_id,
         "at": at, "changes": changes})


COLUMNS = ("object", "record_id", "action", "actor_id", "at", "changes")


def _insert_rows(session: Session, rows: list[dict]) -> None:
    session.execute(insert(sys_audit), rows)


def _copy_rows(session: Session, rows: list[dict]) -> None:
    """PostgreSQL's bulk path: COPY is several times cheaper than INSERTs per row."""
    raw = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    with raw.cursor() as cursor, \
            cursor.copy(f"COPY sys_audit ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row["object"], row["record_id"], row["action"], row["actor_id"],
                            row["at"], json.dumps(row["changes"], ensure_ascii=False)))


_WRITERS = {"sqlite": _insert_rows, "postgresql": _copy_rows}


def flush(session: Session) -> None:
    rows = session.info.pop(BUFFER_KEY, None)
    if rows:
        _WRITERS[session.get_bind().dialect.name](session, rows)


def discard(session: Session) -> None:
    session.info.pop(BUFFER_KEY, None)


@event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    flush(session)


@event.listens_for(Session, "after_rollback")
def _discard_after_rollback(session: Session) -> None:
    discard(session)


def history(session: Session, obj_name: str, record_id: int, limit: int = 200) -> list[dict]:
    flush(session)
    rows = session.execute(
        select(sys_audit.c.id, sys_audit.c.action, sys_audit.c.actor_id, sys_audit.c.at,
               sys_audit.c.changes)
        .where(sys_audit.c.object == obj_name, sys_audit.c.record_id == record_id)
        .order_by(sys_audit.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
