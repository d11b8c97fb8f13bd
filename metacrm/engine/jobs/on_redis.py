"""Jobs on rq + Redis: ``metacrm worker`` runs an rq worker and the scheduler.

Why this scheduler and not rq's own: rq 2.4+ ships a CronScheduler (beta) and
rq-scheduler is a separate package, but both keep their schedule in the memory of one
process and in Redis: two schedulers (two machines, or a restart) each enqueue the same
run, cron strings are read in the machine's local time rather than the instance's
``METACRM_TIMEZONE`` and ignore the one clock tests and demos set, a night missed while
no scheduler ran is not caught up, and neither works without Redis. Here a run's *slot*
(the date of a nightly job, the floored instant of an interval job) is a row in
``sys_job``, inserted with ON CONFLICT DO NOTHING: any number of schedulers on any
number of machines start each run once, a missed night is caught up once, the same
catalogue runs in-process without Redis (``metacrm jobs run-due``), and the row is the
run's log in Admin → Jobs. rq does what it is good at: carrying a run's id to a worker
process, forking a work horse for it and stopping it at its timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import make_engine, writer
from metacrm.engine.jobs import catalogue, runs
from metacrm.engine.schema import metastore

__all__ = ["RqJobs", "perform", "tick", "work"]

log = logging.getLogger(__name__)
FAILURE_KEPT = int(dt.timedelta(days=7).total_seconds())  # sys_job keeps the real record
_worker: dict[str, object] = {}  # the engine and pid of ``work``'s process


class _Worker(Worker):
    """rq's worker, listening for its commands (stop a run, shut down) with a 1 s
    timeout instead of rq's 60 s: redis-py 8's pubsub thread finishes its wait before it
    stops, so rq 3.0's worker took a minute to exit."""

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name,
                      self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True,
            exception_handler=self._pubsub_exception_handler)  # type: ignore[assignment]


class RqJobs:
    """The instance's queue: named after its database's instance id, so two instances
    (or two test databases) sharing one Redis never take each other's runs."""

    def __init__(self, redis_url: str, instance_id: str):
        self.redis = Redis.from_url(redis_url)
        self.prefix = f"metacrm-{instance_id}"
        self.queue = Queue(self.prefix, connection=self.redis)

    def push(self, waiting: list[tuple[int, int, str]]) -> int:
        """Put queued runs (id, attempt, name) on rq unless their rq job is there already,
        so a run Redis lost (a restart, a flush) is put on again. How many were put on."""
        pushed = 0
        for run_id, attempt, name in waiting:
            entry = catalogue.job(name)
            timeout = entry.timeout if entry else catalogue.JobDef.timeout
            try:
                self.queue.enqueue_call(
                    perform, args=(run_id,), job_id=f"{self.prefix}-run-{run_id}-{attempt}",
                    unique=True, timeout=int(timeout.total_seconds()), result_ttl=0,
                    failure_ttl=FAILURE_KEPT, description=f"{name} run {run_id}")
                pushed += 1
            except DuplicateJobError:
                continue
        return pushed

    def worker(self) -> Worker:
        name = f"{self.prefix}-{socket.gethostname()[:40]}-{os.getpid()}"
        return _Worker([self.queue], connection=self.redis, name=name)


def for_engine(engine: Engine, redis_url: str) -> RqJobs:
    with Session(engine) as session:
        return RqJobs(redis_url, metastore.instance_id(session))


def tick(engine: Engine, jobs: RqJobs, at: dt.datetime | None = None) -> int:
    """One round of the scheduler: abandoned runs failed, due slots queued and committed,
    then the queued runs put on rq (after the commit: a worker must find the row)."""
    at = at or clock.now()
    with Session(writer(engine)) as session, session.begin():
        runs.abandon(session, at)
        runs.enqueue_due(session, at)
    with Session(engine) as session:
        waiting = runs.queued(session)
    return jobs.push(waiting)


def perform(run_id: int) -> str | None:
    """What rq runs, by this module path, in a work horse forked from ``work``'s process."""
    engine, pid = _worker["engine"], _worker["pid"]
    assert isinstance(engine, Engine)
    if os.getpid() == pid:
        return runs.perform(engine, run_id)
    # A forked horse never touches the parent's pool: its connections are the parent's.
    own = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        return runs.perform(own, run_id)
    finally:
        own.dispose()


def work(engine: Engine, redis_url: str, *, burst: bool = False, scheduler: bool = True,
         interval: float = 30.0) -> None:
    """An rq worker on the instance's queue, with the scheduler in a thread beside it
    (with ``burst``: one scheduler round, then what is queued, then return)."""
    _worker.update(engine=engine, pid=os.getpid())
    jobs = for_engine(engine, redis_url)
    stop = threading.Event()
    if scheduler:
        tick(engine, jobs)
        if not burst:
            threading.Thread(target=_schedule, args=(engine, jobs, interval, stop),
                             name="metacrm-scheduler", daemon=True).start()
    try:
        jobs.worker().work(burst=burst, with_scheduler=False)
    finally:
        stop.set()


def _schedule(engine: Engine, jobs: RqJobs, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            tick(engine, jobs)
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("the scheduler's round failed")
