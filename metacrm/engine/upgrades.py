"""Migrations of the system tables (Alembic): bring an instance's database to the head
revision, and tell whether it is there.

The revisions live in ``migrations/versions`` beside this module and cover the tables of
systables.py only; object tables follow the metadata through schema sync. Alembic runs
here without an env.py or alembic.ini: a MigrationContext on the caller's engine, the
version kept in ``sys_alembic_version``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text

from metacrm.engine.db import make_engine, writer

__all__ = ["BASELINE", "MIGRATIONS", "VERSION_TABLE", "SchemaState", "SystemSchemaOutdated",
           "check", "head", "new_revision", "scripts", "state", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "sys_alembic_version"
BASELINE = "0001"  # the system tables as they were before migrations existed
# A table every instance has had since the first release: its presence without a version
# table marks an instance created before migrations.
_LEGACY_MARK = "meta_state"
_LOCK_KEY = 0x6D637267  # "mcrg": PostgreSQL advisory lock serialising concurrent upgrades


class SystemSchemaOutdated(Exception):
    """The database's system tables are not at the revision this code needs."""

    def __init__(self, current: str | None, needed: str, known: bool = True):
        self.current, self.needed, self.known = current, needed, known
        if not known:
            message = (f"the database's system tables are at revision {current}, which this "
                       f"metacrm does not know (it needs {needed}): the database was upgraded "
                       "by a newer metacrm; run that version")
        else:
            found = "an instance created before migrations" if current is None \
                else f"revision {current}"
            message = (f"the database's system tables are at {found}; this metacrm needs "
                       f"revision {needed}: back the database up, then run 'metacrm upgrade'")
        super().__init__(message)


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # the stored revision; None when there is no version table
    head: str
    empty: bool  # no system tables at all: a new database
    legacy: bool  # system tables without a version table: created before migrations

    @property
    def at_head(self) -> bool:
        return self.current == self.head


@functools.cache
def scripts() -> ScriptDirectory:
    """The shipped revisions (read once per process)."""
    return ScriptDirectory(str(MIGRATIONS), file_template="v%(rev)s_%(slug)s")


def head() -> str:
    found = scripts().get_current_head()
    assert found is not None, "no revisions shipped"
    return found


def _context(conn: Connection, **opts) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, **opts})


def _state(conn: Connection) -> SchemaState:
    tables = set(inspect(conn).get_table_names())
    current = _context(conn).get_current_revision() if VERSION_TABLE in tables else None
    return SchemaState(current=current, head=head(),
                       empty=not tables & {VERSION_TABLE, _LEGACY_MARK},
                       legacy=VERSION_TABLE not in tables and _LEGACY_MARK in tables)


def state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return _state(conn)


def check(engine: Engine) -> SchemaState:
    """The state, if the database can be used as it is (at head, or new and empty);
    otherwise SystemSchemaOutdated, which tells the admin what to do."""
    found = state(engine)
    if found.at_head or found.empty:
        return found
    known = found.current is None or _known(found.current)
    raise SystemSchemaOutdated(found.current, found.head, known=known)


def _known(revision: str) -> bool:
    try:
        return scripts().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the system tables to head in one transaction (DDL is transactional on both
    databases as the engine is set up): every revision on a new database; an instance
    created before migrations is first stamped at the baseline. Returns the revisions
    before and after (before is None for a new database)."""
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":  # two processes starting at once: one upgrades
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        found = _state(conn)
        if found.current is not None and not _known(found.current):
            raise SystemSchemaOutdated(found.current, found.head, known=False)
        ctx = _context(conn, script=scripts(),
                       fn=lambda rev, _context: scripts()._upgrade_revs("head", rev))
        before = found.current
        if found.legacy:
            ctx.stamp(scripts(), BASELINE)
            before = BASELINE
        with Operations.context(ctx):
            ctx.run_migrations()
    return before, head()


def new_revision(message: str) -> Path:
    """Write the next revision, its operations drafted by Alembic's comparison of a new
    SQLite database at head with systables.py, for a developer to check and complete
    (PostgreSQL-only options, data changes, the types of metacrm.engine.sqltypes)."""
    from alembic.autogenerate import produce_migrations, render_python_code

    from metacrm.engine.systables import system_metadata

    engine = make_engine("sqlite://")
    upgrade(engine)
    with engine.connect() as conn:
        ops = produce_migrations(_context(conn), system_metadata)
    engine.dispose()
    assert ops.upgrade_ops is not None and ops.downgrade_ops is not None
    number = f"{int(head()) + 1:04d}"
    written = scripts().generate_revision(
        number, message, head=head(), imports="",
        upgrades=render_python_code(ops.upgrade_ops).strip(),
        downgrades=render_python_code(ops.downgrade_ops).strip())
    assert written is not None
    scripts.cache_clear()
    return Path(written.path)
