"""Jobs really run on Redis: ``metacrm worker`` processes started by the tests, an rq
worker and the scheduler, against the test's database; and a worker killed with
``kill -9`` half-way through a run leaves nothing of it behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs_for_tests import greetings, runs_of
from sqlalchemy.orm import Session

from metacrm.engine.access import users
from metacrm.engine.db import writer
from metacrm.engine.jobs import runs

from conftest import ROOT

TESTS = Path(__file__).resolve().parent


def worker(database_url: str, redis_url: str, tmp_path: Path, *args: str,
           **env: str) -> subprocess.Popen:
    """``metacrm worker`` in a process (and session) of its own, with the tests' jobs."""
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}",
                   "METACRM_DATABASE_URL": database_url, "METACRM_REDIS_URL": redis_url,
                   "METACRM_INSTANCE": str(tmp_path / "instance"), **env}
    return subprocess.Popen([sys.executable, "-m", "metacrm.cli", "worker", *args],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


def test_a_burst_worker_queues_the_due_runs_and_does_them_on_rq(engine, database_url,
                                                                 redis_url, tmp_path):
    finished(worker(database_url, redis_url, tmp_path, "--burst"))
    [run] = runs_of(engine, "housekeeping")
    assert run["status"] == "done" and run["attempt"] == 1
    assert not run["worker"].endswith(f":{os.getpid()}")  # done by the worker's process
    finished(worker(database_url, redis_url, tmp_path, "--burst"))  # the slot has its run
    assert len(runs_of(engine, "housekeeping")) == 1


def test_a_worker_without_a_scheduler_does_what_an_admin_queued(engine, database_url,
                                                                redis_url, tmp_path, admin):
    from metacrm.engine.jobs import on_redis

    with Session(writer(engine)) as session, session.begin():
        run_id = runs.run_now(session, "housekeeping", admin.user_id)
    assert on_redis.for_engine(engine, redis_url).push([(run_id, 0, "housekeeping")]) == 1
    finished(worker(database_url, redis_url, tmp_path, "--burst", "--no-scheduler"))
    assert [r["status"] for r in runs_of(engine, "housekeeping")] == ["done"]


def test_a_worker_killed_half_way_leaves_no_half_run_and_a_rerun_no_duplicate(
        engine, database_url, redis_url, tmp_path):
    with Session(engine) as session, session.begin():
        for name in ("zhang", "li", "zhao"):
            users.create_user(session, name, "long-enough-password")
    paused = tmp_path / "paused"
    slow = worker(database_url, redis_url, tmp_path, "--burst",
                  METACRM_JOB_MODULES="jobs_for_tests", METACRM_TEST_JOB_PAUSE=str(paused))
    deadline = time.monotonic() + 60
    while not paused.exists():  # the greetings are inserted, not yet committed
        assert slow.poll() is None and time.monotonic() < deadline, slow.stdout.read()
        time.sleep(0.1)
    os.kill(int(paused.read_text()), signal.SIGKILL)  # the work horse (a session of its own)
    os.killpg(slow.pid, signal.SIGKILL)  # and the worker
    slow.wait()
    [run] = runs_of(engine, "greet_everyone")
    assert run["status"] == "running" and greetings(engine) == 0  # nothing half-applied

    # The next worker finds the run abandoned (its work horse is gone) and fails it; an
    # admin's retry runs it again, once.
    finished(worker(database_url, redis_url, tmp_path, "--burst",
                    METACRM_JOB_MODULES="jobs_for_tests"))
    [run] = runs_of(engine, "greet_everyone")
    assert run["status"] == "failed" and "no longer running" in run["error"]
    with Session(writer(engine)) as session, session.begin():
        assert runs.retry(session, run["id"], None)
    for _ in range(2):
        finished(worker(database_url, redis_url, tmp_path, "--burst",
                        METACRM_JOB_MODULES="jobs_for_tests"))
    [run] = runs_of(engine, "greet_everyone")
    assert (run["status"], run["attempt"], run["counts"]) == ("done", 2, {"notified": 3})
    assert greetings(engine) == 3
