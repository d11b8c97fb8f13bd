"""What every benchmark needs: a throwaway database, an installed instance, timing and
statement counting.

Each sized run gets a fresh database (a temp SQLite file, or a PostgreSQL database
created for the run and dropped afterwards) so nothing clashes with the tests.
"""

from __future__ import annotations

import os
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, event, make_url, text
from sqlalchemy.orm import Session

from metacrm.engine import instance, write_hooks
from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "object_defs" / "sample"
FLOWS = ROOT / "flows" / "sample"  # the sample's stage processes and approval flows
POSTGRES_URL = os.environ.get("METACRM_BENCH_POSTGRES_URL",
                              "postgresql://root@127.0.0.1:5432/test")
# One name per run: a concurrent run must not drop this run's database.
write_hooks.install()  # the records service's features, as in the app
BENCH_DATABASE = f"metacrm_bench_{os.getpid()}"
USERNAME, PASSWORD = "bench", "bench-password"


# -- databases ------------------------------------------------------------------------
@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A URL to an empty database that is removed afterwards."""
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    drop = text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
    try:
        with admin.connect() as conn:
            conn.execute(drop)
            conn.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
        yield make_url(POSTGRES_URL).set(database=BENCH_DATABASE) \
            .render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


@dataclass
class Instance:
    """A database with the sample template installed and one admin user."""

    url: str
    engine: Engine
    actor: Actor
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def registry(self) -> Registry:
        return metastore.RegistryCache(self.engine).get()


def install_instance(url: str, templates: Sequence[Path] = (SAMPLE,)) -> Instance:
    engine = make_engine(url)
    instance.install(engine, list(templates))
    with Session(engine) as session, session.begin():
        users.create_user(session, USERNAME, PASSWORD, is_admin=True)
    with Session(engine) as session:
        actor = users.authenticate(session, USERNAME, PASSWORD)
    assert actor is not None
    return Instance(url, engine, actor)


# -- statement counting -----------------------------------------------------------------
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
METADATA_TABLE = re.compile(r"\bmeta_\w+")


class StatementLog:
    """Every statement an engine sends while recording (``before_cursor_execute``).

    Transaction control (the BEGIN that metacrm issues itself on SQLite) is kept apart:
    it is not a query.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.statements: list[str] = []
        self.recording = False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.recording and not TRANSACTION_CONTROL.match(statement):
            self.statements.append(statement)

    @contextmanager
    def record(self) -> Iterator[list[str]]:
        start = len(self.statements)
        self.recording = True
        seen: list[str] = []
        try:
            yield seen
        finally:
            self.recording = False
            seen.extend(self.statements[start:])

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def metadata_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if METADATA_TABLE.search(s)]


# -- timing -------------------------------------------------------------------------------
def clear(inst: Instance, tables: tuple[str, ...]) -> None:
    """Empty the tables (and the audit log) so every variant starts alike."""
    with inst.engine.begin() as conn:
        if inst.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)}"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    if inst.dialect == "sqlite":
        with inst.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def create_batched(inst: Instance, object_name: str, values: list[dict],
                   batch: int) -> list[dict]:
    """The records service as an import uses it: one create_many per transaction."""
    registry = inst.registry()
    stored: list[dict] = []
    for start in range(0, len(values), batch):
        with Session(inst.engine) as session, session.begin():
            stored.extend(records.create_many(session, registry, object_name,
                                              values[start:start + batch], actor=inst.actor))
    return stored


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 3,
                budget: float | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, calls alternated so drift hits all alike.

    With a ``budget`` (seconds), slow rounds are repeated fewer times (at least 3).
    """
    round_time = timed(lambda: [fn() for fn in fns.values()])
    for _ in range(warmup - 1):
        for fn in fns.values():
            fn()
    if budget is not None:
        repeat = max(3, min(repeat, int(budget / max(round_time, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            samples[name].append(timed(fn))
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def ms(seconds: float) -> float:
    return seconds * 1000.0
