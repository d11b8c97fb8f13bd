"""The audit log: every change with its field-level before/after, who and when.

Entries are buffered on the session and written with one executemany just before the
transaction commits (or before the log is read), so auditing costs one statement per
transaction instead of one per record, and a rolled-back change leaves no entry. On
PostgreSQL a new record's entry can instead ride in its INSERT (``with_create_entry``),
so a one-record transaction sends one statement, not two.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Insert, bindparam, event, insert, literal, select
from sqlalchemy.orm import Session

from metacrm.engine.systables import sys_audit

if TYPE_CHECKING:
    import psycopg

__all__ = ["history", "record"]

BUFFER_KEY = "metacrm.audit_buffer"


def record(session: Session, obj_name: str, record_id: int, action: str, actor_id: int | None,
           at: dt.datetime, changes: dict[str, list[Any]], via: str | None = None) -> None:
    """Buffer one entry; ``via``: what made the change on the actor's behalf (an
    automation, ``automation:<object>.<name>``)."""
    session.info.setdefault(BUFFER_KEY, []).append(
        {"object": obj_name, "record_id": record_id, "action": action, "actor_id": actor_id,
         "at": at, "changes": changes, "via": via})


COLUMNS = ("object", "record_id", "action", "actor_id", "at", "changes")
BUFFERED = (*COLUMNS, "via")
_INSERT = insert(sys_audit)


def _insert_rows(session: Session, rows: list[dict]) -> None:
    session.connection().execute(_INSERT, rows)


# -- a new record's entry in its own INSERT (PostgreSQL) --------------------------------
def foldable(session: Session, dialect: str) -> bool:
    """Whether a new record's entry may ride in its INSERT: PostgreSQL (a data-modifying
    WITH), and no entry is waiting in the buffer (it would then be written after)."""
    return dialect == "postgresql" and not session.info.get(BUFFER_KEY)


def with_create_entry(stmt: Insert, obj_name: str) -> Insert:
    """``stmt`` (an INSERT … RETURNING id) followed, in the same statement, by the new
    record's "create" entry; returns the id, or no row when ``stmt`` inserted none (a
    unique index refused it). Its parameters are ``entry_params``."""
    new = stmt.cte("new_record")
    return insert(sys_audit).from_select(list(COLUMNS), select(
        literal(obj_name), new.c.id, literal("create"),
        bindparam("_audit_actor", type_=sys_audit.c.actor_id.type),
        bindparam("_audit_at", type_=sys_audit.c.at.type),
        bindparam("_audit_changes", type_=sys_audit.c.changes.type))
    ).returning(sys_audit.c.record_id)


def entry_params(actor_id: int | None, at: dt.datetime, changes: dict[str, list[Any]]
                 ) -> dict[str, Any]:
    return {"_audit_actor": actor_id, "_audit_at": at, "_audit_changes": changes}


def _copy_rows(session: Session, rows: list[dict]) -> None:
    """PostgreSQL's bulk path: COPY is several times cheaper than INSERTs per row."""
    raw = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    with raw.cursor() as cursor, \
            cursor.copy(f"COPY sys_audit ({', '.join(BUFFERED)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row["object"], row["record_id"], row["action"], row["actor_id"],
                            row["at"], json.dumps(row["changes"], ensure_ascii=False),
                            row["via"]))


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
               sys_audit.c.changes, sys_audit.c.via)
        .where(sys_audit.c.object == obj_name, sys_audit.c.record_id == record_id)
        .order_by(sys_audit.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
