"""Jobs the tests add to the catalogue (``METACRM_JOB_MODULES=jobs_for_tests`` in a
worker process, ``catalogue.install`` in the test's own).

``greet_everyone`` notifies every user once per day, as a reminder job would: an
INSERT … SELECT whose dedupe key makes a second run add nothing. Given
``METACRM_TEST_JOB_PAUSE`` (a file path), it writes its process id there after its
insert and then waits a minute, so a test can kill its worker half-way.
``fails_while_told`` greets too, then fails while ``FAIL`` says so.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from sqlalchemy import Engine, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from metacrm import clock
from metacrm.engine.jobs.catalogue import Daily, JobDef
from metacrm.engine.systables import sys_job, sys_notification, sys_user
from metacrm.metadata.labels import Label

FAIL = {"on": False}


def greet_everyone(session, registry, at: dt.datetime) -> dict[str, int]:
    n, u = sys_notification, sys_user
    day = at.astimezone(clock.zone()).date().isoformat()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = select(u.c.id, literal("greeting"), literal({}, n.c.params.type),
                  literal(at, n.c.created_at.type), literal(f"greeting:{day}")).where(
        u.c.active.is_(True))
    stmt = dialect.insert(n).from_select(
        ["user_id", "kind", "params", "created_at", "dedupe_key"], rows
    ).on_conflict_do_nothing().returning(n.c.id)
    notified = len(session.execute(stmt).all())  # an INSERT's rowcount is not kept
    pause = os.environ.get("METACRM_TEST_JOB_PAUSE")
    if pause:
        Path(pause).write_text(str(os.getpid()))
        time.sleep(60)
    return {"notified": notified}


def fails_while_told(session, registry, at: dt.datetime) -> dict[str, int]:
    n = sys_notification
    count = session.execute(select(func.count()).select_from(n)).scalar_one()
    greet_everyone(session, registry, at)
    if FAIL["on"]:
        raise RuntimeError("told to fail")
    return {"seen": count}


GREET = JobDef("greet_everyone", Label(en="Greet everyone", zh="问候大家"),
               Daily(dt.time(8, 0)), greet_everyone)
FAILING = JobDef("fails_while_told", Label(en="Fails while told", zh="按要求失败"),
                 Daily(dt.time(8, 0)), fails_while_told)
JOBS = (GREET,)  # what METACRM_JOB_MODULES=jobs_for_tests adds


def runs_of(engine: Engine, name: str | None = None) -> list[dict]:
    """The sys_job rows (of one job), oldest first."""
    with engine.connect() as conn:
        stmt = select(sys_job).order_by(sys_job.c.id)
        if name:
            stmt = stmt.where(sys_job.c.name == name)
        return [dict(r._mapping) for r in conn.execute(stmt)]


def greetings(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(sys_notification).where(
            sys_notification.c.kind == "greeting")).scalar_one()
