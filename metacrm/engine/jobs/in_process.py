"""Jobs without Redis: the due runs done in this process, from cron (``metacrm jobs
run-due``) or from a thread of each web worker (``metacrm run`` without Redis).

Safe to run anywhere, at once: the slot's unique key and the conditional claim in
``runs`` let each run happen once however many processes ask.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import writer
from metacrm.engine.jobs import runs

__all__ = ["Background", "run_due"]

log = logging.getLogger(__name__)


def run_due(engine: Engine, at: dt.datetime | None = None) -> list[tuple[int, str | None]]:
    """Abandoned runs marked failed, the due slots queued, then every queued run done
    here: (run id, 'done' | 'failed' | None when another process had it)."""
    at = at or clock.now()
    with Session(writer(engine)) as session, session.begin():
        runs.abandon(session, at)
        runs.enqueue_due(session, at)
        waiting = runs.queued(session)
    return [(run_id, runs.perform(engine, run_id)) for run_id, _attempt, _name in waiting]


class Background(threading.Thread):
    """Runs the due jobs every ``interval`` seconds until stopped; a daemon, so it ends
    with its process. Started in each web worker after the fork, never before it: a
    process forked while another thread holds a lock can hang."""

    def __init__(self, engine: Engine, interval: float = 30.0):
        super().__init__(name="metacrm-jobs", daemon=True)
        self.engine = engine
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                run_due(self.engine)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("running the due jobs failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
