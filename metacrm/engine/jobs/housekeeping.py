"""The nightly housekeeping: what the system tables no longer need, one DELETE each.

Each rule removes rows older than a fixed age counted back from the run's instant, so a
second run for the same instant finds nothing left to remove.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import delete

from metacrm.engine.db import affected
from metacrm.engine.jobs.catalogue import Daily, JobDef
from metacrm.engine.systables import sys_job, sys_notification, sys_session
from metacrm.metadata.labels import Label

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from metacrm.engine.schema.registry import Registry

__all__ = ["HOUSEKEEPING", "JOB_RUNS_KEPT", "READ_NOTIFICATIONS_KEPT", "housekeeping"]

JOB_RUNS_KEPT = dt.timedelta(days=90)            # Admin → Jobs shows three months of runs
READ_NOTIFICATIONS_KEPT = dt.timedelta(days=180)  # unread ones stay until they are read


def housekeeping(session: Session, registry: Registry, at: dt.datetime) -> dict[str, int]:
    j, n = sys_job, sys_notification
    return {
        "sessions": affected(session.execute(delete(sys_session).where(
            sys_session.c.expires_at < at))),
        # Finished runs only: a queued or running one is still somebody's work.
        "job_runs": affected(session.execute(delete(j).where(
            j.c.queued_at < at - JOB_RUNS_KEPT, j.c.status.in_(("done", "failed"))))),
        "notifications": affected(session.execute(delete(n).where(
            n.c.read_at < at - READ_NOTIFICATIONS_KEPT))),
    }


HOUSEKEEPING = JobDef("housekeeping", Label(en="Housekeeping", zh="系统清理"),
                      Daily(dt.time(3, 0)), housekeeping, count_labels={
                          "sessions": Label(en="Expired sessions", zh="过期会话"),
                          "job_runs": Label(en="Old job runs", zh="旧的运行记录"),
                          "notifications": Label(en="Old read notifications",
                                                 zh="旧的已读通知")})
