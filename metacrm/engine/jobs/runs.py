"""A run's life in ``sys_job``: queued for a slot, claimed, done or failed, retried.

Exactly once comes from the database, not from a lock service: the unique (name, slot)
lets any number of schedulers insert a slot's run and only the first succeeds, and the
claim is a conditional UPDATE (queued → running), so two workers handed the same run
cannot both start it. The job's work and its 'done' mark commit in one transaction: a
worker killed half-way leaves nothing of the run applied, only a ``running`` row that
``abandon`` later marks failed, ready for a retry or the next slot.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, exists, literal, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected, conflict_insert, writer
from metacrm.engine.jobs import catalogue
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_job

__all__ = ["abandon", "enqueue_due", "perform", "queued", "retry", "row", "run_now",
           "worker_name"]

log = logging.getLogger(__name__)
ERROR_CHARS = 4000
PENDING = ("queued", "running")


class Superseded(Exception):
    """The run was taken from this attempt (declared abandoned, then retried) while it
    worked: its work is rolled back rather than committed twice."""


def worker_name() -> str:
    """host:pid of this process: a run's worker, checked when the run looks abandoned."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}"


def _queue(session: Session, name: str, slot: str, at: dt.datetime, *,
           queued_by: int | None = None, only_if_idle: bool = False) -> int | None:
    """INSERT … SELECT … ON CONFLICT DO NOTHING: the run's id, None when the slot has one
    (or, ``only_if_idle``, when the job still has a run queued or running)."""
    j = sys_job
    values = {"name": name, "slot": slot, "status": "queued", "params": {"at": at.isoformat()},
              "attempt": 0, "queued_at": clock.now(), "counts": {}, "queued_by": queued_by}
    source = select(*(literal(v, j.c[k].type).label(k) for k, v in values.items()))
    # SQLite reads ON CONFLICT after a bare SELECT as a join's ON: a WHERE ends the SELECT.
    source = source.where(~exists().where(j.c.name == name, j.c.status.in_(PENDING))
                          if only_if_idle else literal(True))
    stmt = conflict_insert(session, sys_job).from_select(list(values), source)
    return session.execute(stmt.on_conflict_do_nothing(index_elements=["name", "slot"])
                           .returning(j.c.id)).scalar()


def enqueue_due(session: Session, at: dt.datetime) -> list[int]:
    """Queue each job's current slot, once whoever asks and however often: the new runs'
    ids. A job whose last run is still queued or running waits for it (no pile-up while
    the workers are down); a missed slot is caught up once, by the latest slot only."""
    found = []
    for entry in catalogue.jobs():
        slot, _due = entry.schedule.slot(at)
        run_id = _queue(session, entry.name, slot, at, only_if_idle=True)
        if run_id is not None:
            found.append(run_id)
    return found


def run_now(session: Session, name: str, actor_id: int | None) -> int:
    """A run outside the schedule (Admin → Jobs, ``metacrm jobs run``): a slot of its own."""
    if catalogue.job(name) is None:
        raise LookupError(name)
    at = clock.now()
    run_id = _queue(session, name, "manual:" + at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at,
                    queued_by=actor_id)
    if run_id is None:  # the same microsecond twice: the other click's run
        raise LookupError(name)
    return run_id


def retry(session: Session, run_id: int, actor_id: int | None) -> bool:
    """A failed run queued again (its slot and instant kept); False if it is not failed."""
    j = sys_job
    return bool(affected(session.execute(update(j).where(j.c.id == run_id, j.c.status == "failed")
                                         .values(status="queued", queued_at=clock.now(),
                                                 queued_by=actor_id, error=None, worker=None,
                                                 started_at=None, finished_at=None))))


def queued(session: Session) -> list[tuple[int, int, str]]:
    """The queued runs, oldest first: (id, attempt, job name)."""
    j = sys_job
    return [(r.id, r.attempt, r.name) for r in session.execute(
        select(j.c.id, j.c.attempt, j.c.name).where(j.c.status == "queued").order_by(j.c.id))]


def perform(engine: Engine, run_id: int, worker: str | None = None) -> str | None:
    """Claim the run and do it: 'done', 'failed', or None when it was not queued (done
    already, or another worker has it)."""
    j, w = sys_job, writer(engine)
    with Session(w) as session, session.begin():
        claimed = session.execute(
            update(j).where(j.c.id == run_id, j.c.status == "queued")
            .values(status="running", started_at=clock.now(), worker=worker or worker_name(),
                    attempt=j.c.attempt + 1)
            .returning(j.c.name, j.c.params, j.c.attempt)).first()
    if claimed is None:
        return None
    mine = (j.c.id == run_id, j.c.status == "running", j.c.attempt == claimed.attempt)
    try:
        entry = catalogue.job(claimed.name)
        if entry is None:
            raise LookupError(f"no job named {claimed.name!r} in this process's catalogue")
        given = claimed.params.get("at")
        at = dt.datetime.fromisoformat(given) if given else clock.now()
        with Session(w) as session, session.begin():
            counts = entry.run(session, metastore.load_registry(session), at)
            if not affected(session.execute(update(j).where(*mine).values(
                    status="done", counts=counts, finished_at=clock.now()))):
                raise Superseded(f"run {run_id} was taken over while it worked")
        return "done"
    except Exception as exc:  # noqa: BLE001 - any failure of a job is recorded as such
        log.exception("job run %s (%s) failed", run_id, claimed.name)
        with Session(w) as session, session.begin():
            session.execute(update(j).where(*mine).values(
                status="failed", error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
                finished_at=clock.now()))
        return "failed"


def abandon(session: Session, at: dt.datetime) -> list[int]:
    """Mark failed the runs whose worker is gone: a process of this machine that no
    longer lives, or a run older than its job's timeout (its machine may be gone). The
    runs marked; their work was never committed, so a retry starts clean."""
    j = sys_job
    rows = session.execute(select(j.c.id, j.c.name, j.c.worker, j.c.started_at, j.c.attempt)
                           .where(j.c.status == "running")).all()
    marked = []
    for row in rows:  # the running runs: a handful, not records
        entry = catalogue.job(row.name)
        limit = entry.timeout if entry else catalogue.JobDef.timeout
        if _dead_here(row.worker):
            reason = f"abandoned: its worker {row.worker} is no longer running"
        elif row.started_at is None or row.started_at < at - limit:
            reason = (f"abandoned: still running after {int(limit.total_seconds() // 60)} "
                      "minutes (its worker was probably stopped)")
        else:
            continue
        if affected(session.execute(update(j).where(
                j.c.id == row.id, j.c.status == "running", j.c.attempt == row.attempt)
                .values(status="failed", error=reason, finished_at=clock.now()))):
            marked.append(row.id)
    return marked


def _dead_here(worker: str | None) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname()[:80] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        return False
    stat = Path(f"/proc/{pid}/stat")  # a killed process nobody reaped yet is a zombie
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def row(session: Session, run_id: int) -> dict[str, Any] | None:
    found = session.execute(select(sys_job).where(sys_job.c.id == run_id)).first()
    return dict(found._mapping) if found else None
