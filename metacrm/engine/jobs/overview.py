"""What Admin → Jobs and ``metacrm jobs list`` show: each job with its last run and when
it is next due, and the runs, newest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from metacrm.engine.jobs import catalogue
from metacrm.engine.systables import sys_job

__all__ = ["JobSummary", "page_of_runs", "summaries"]


@dataclass(frozen=True)
class JobSummary:
    job: catalogue.JobDef
    last: dict[str, Any] | None   # the newest run, of any slot
    next_due: dt.datetime         # in the past: due now, not yet queued


def summaries(session: Session, at: dt.datetime) -> list[JobSummary]:
    j = sys_job
    entries = catalogue.jobs()
    newest = select(func.max(j.c.id)).group_by(j.c.name).scalar_subquery()
    last = {r.name: dict(r._mapping) for r in session.execute(select(j).where(j.c.id.in_(newest)))}
    current = {e.name: e.schedule.slot(at) for e in entries}
    queued = set(session.execute(select(j.c.name).where(
        tuple_(j.c.name, j.c.slot).in_([(n, s) for n, (s, _) in current.items()]))).scalars()
    ) if current else set()
    return [JobSummary(e, last.get(e.name),
                       e.schedule.next_due(at) if e.name in queued else current[e.name][1])
            for e in entries]


def page_of_runs(session: Session, page: int, size: int = 50) -> tuple[list[dict[str, Any]], bool]:
    """The runs of page ``page`` (from 1), newest first, and whether more follow."""
    j = sys_job
    rows = session.execute(select(j).order_by(j.c.id.desc()).offset((page - 1) * size)
                           .limit(size + 1)).all()
    return [dict(r._mapping) for r in rows[:size]], len(rows) > size
