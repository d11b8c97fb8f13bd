"""Engine creation with the settings each database needs."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["affected", "conflict_insert", "make_engine", "refresh_statistics", "writer"]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work during a write; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: large tables stay in memory
    # Memory-mapped reads: a lookup into a table larger than the cache costs no syscall.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()
    # Let SQLAlchemy, not the driver, begin transactions, so DDL and SAVEPOINTs are
    # transactional too (pysqlite otherwise autocommits DDL).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn) -> None:
    # A transaction that reads first and writes later cannot wait for the write lock in
    # WAL mode (SQLite answers "database is locked" at once), so writers say up front.
    immediate = conn.get_execution_options().get(WRITER_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITER_OPTION = "metacrm_writer"


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that will write (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(**{WRITER_OPTION: True})


def affected(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. ``Session.execute`` is typed as giving a plain
    ``Result``; for such statements it is a ``CursorResult``, which counts them."""
    return cast(CursorResult[Any], result).rowcount


def conflict_insert(session: Session, table: Table) -> Any:
    """An INSERT in the dialect of the session's database, which knows ON CONFLICT (both
    databases spell it alike): an insert that a unique key makes idempotent."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def refresh_statistics(engine: Engine) -> None:
    """Fresh planner statistics after a bulk load (demo data, imports).

    Without them, on a freshly loaded table, SQLite in particular picks the wrong index
    and sorts everything. Not run after schema changes: a full ANALYZE of a large
    database takes seconds, and new columns are empty.
    """
    with engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            conn.exec_driver_sql("ANALYZE")
            return
        # Only this instance's schema: a bare ANALYZE visits every schema of the database
        # and waits on other instances' locks.
        names = conn.exec_driver_sql(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()"
        ).scalars().all()
        if names:
            conn.exec_driver_sql("ANALYZE " + ", ".join(names))
