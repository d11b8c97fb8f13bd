"""Background jobs without Redis: each slot's run queued once, runs done once and all or
nothing, failures recorded and retried, abandoned runs found; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import jobs_for_tests
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from jobs_for_tests import greetings, runs_of
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.cli import main
from metacrm.engine import job_catalogue
from metacrm.engine.db import writer
from metacrm.engine.jobs import catalogue, housekeeping, in_process, runs
from metacrm.engine.jobs.catalogue import Daily, Every
from metacrm.engine.systables import sys_job, sys_notification, sys_session

SHANGHAI = "Asia/Shanghai"


@pytest.fixture
def shanghai(monkeypatch):
    monkeypatch.setenv("METACRM_TIMEZONE", SHANGHAI)
    clock.reset()
    yield
    monkeypatch.undo()
    clock.reset()


@pytest.fixture
def test_jobs():
    """The catalogue with the tests' jobs; the wiring's again afterwards."""
    catalogue.install([*job_catalogue.CATALOGUE, jobs_for_tests.GREET, jobs_for_tests.FAILING])
    jobs_for_tests.FAIL["on"] = False
    yield
    job_catalogue.install()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# -- schedules ------------------------------------------------------------------------------
def test_a_daily_slot_is_the_last_day_whose_time_has_passed_in_the_instance_zone(shanghai):
    nightly = Daily(dt.time(3, 0))
    assert nightly.slot(at("2026-12-05T19:30:00+00:00"))[0] == "2026-12-06"  # 03:30 there
    assert nightly.slot(at("2026-12-05T18:30:00+00:00"))[0] == "2026-12-05"  # 02:30 there
    assert nightly.next_due(at("2026-12-05T19:30:00+00:00")) == at("2026-12-06T19:00:00+00:00")


def test_an_interval_slot_is_the_instant_floored_to_its_step():
    every = Every(15)
    assert every.slot(at("2026-12-06T10:44:59+00:00")) == ("2026-12-06T10:30Z",
                                                           at("2026-12-06T10:30:00+00:00"))
    assert every.next_due(at("2026-12-06T10:44:59+00:00")) == at("2026-12-06T10:45:00+00:00")


# -- queuing and running ------------------------------------------------------------------------
def test_a_due_slot_is_queued_once_however_often_the_scheduler_asks(engine):
    now = at("2026-12-06T10:00:00+00:00")
    for _ in range(2):
        for _ in range(2):  # two schedulers, each in its own transaction
            with Session(writer(engine)) as session, session.begin():
                runs.enqueue_due(session, now)
    assert sorted((r["name"], r["status"]) for r in runs_of(engine)) == [
        ("housekeeping", "queued"), ("reminders", "queued")]


def test_a_missed_night_is_caught_up_once_by_its_latest_slot(engine, shanghai):
    in_process.run_due(engine, at("2026-12-01T20:00:00+00:00"))
    in_process.run_due(engine, at("2026-12-05T20:00:00+00:00"))  # four nights later
    assert [r["slot"] for r in runs_of(engine, "housekeeping")] == ["2026-12-02", "2026-12-06"]


def test_running_the_due_jobs_twice_changes_nothing_the_second_time(engine, admin):
    now = at("2026-12-06T10:00:00+00:00")
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(sys_session), [
            {"session_hash": "old", "user_id": admin.user_id, "created_at": now - dt.timedelta(days=9),
             "expires_at": now - dt.timedelta(days=2)},
            {"session_hash": "live", "user_id": admin.user_id, "created_at": now,
             "expires_at": now + dt.timedelta(days=2)}])
        session.execute(sa.insert(sys_notification), [
            {"user_id": admin.user_id, "kind": "k", "params": {}, "created_at": now,
             "read_at": now - housekeeping.READ_NOTIFICATIONS_KEPT - dt.timedelta(days=1)},
            {"user_id": admin.user_id, "kind": "k", "params": {}, "created_at": now,
             "read_at": now}])
    first = in_process.run_due(engine, now)
    assert [status for _, status in first] == ["done", "done"]  # reminders, housekeeping
    assert runs_of(engine, "housekeeping")[0]["counts"] == {"sessions": 1, "job_runs": 0,
                                                            "notifications": 1}
    assert in_process.run_due(engine, now) == []  # the slot has its run
    with Session(writer(engine)) as session, session.begin():
        again = runs.run_now(session, "housekeeping", admin.user_id)
    assert runs.perform(engine, again) == "done"
    assert runs_of(engine, "housekeeping")[-1]["counts"] == {"sessions": 0, "job_runs": 0,
                                                             "notifications": 0}


def test_a_done_run_is_not_run_again(engine):
    done = in_process.run_due(engine, at("2026-12-06T10:00:00+00:00"))
    assert [status for _, status in done] == ["done", "done"]
    assert all(runs.perform(engine, run_id) is None for run_id, _ in done)


def test_a_failing_job_is_failed_with_its_error_and_nothing_of_it_is_committed(
        engine, admin, test_jobs):
    jobs_for_tests.FAIL["on"] = True
    with Session(writer(engine)) as session, session.begin():
        run_id = runs.run_now(session, "fails_while_told", admin.user_id)
    assert runs.perform(engine, run_id) == "failed"
    [run] = runs_of(engine, "fails_while_told")
    assert run["status"] == "failed" and run["error"] == "RuntimeError: told to fail"
    assert run["finished_at"] is not None and run["attempt"] == 1
    assert greetings(engine) == 0  # its insert was rolled back with it


def test_retry_runs_a_failed_run_again(engine, admin, test_jobs):
    jobs_for_tests.FAIL["on"] = True
    with Session(writer(engine)) as session, session.begin():
        run_id = runs.run_now(session, "fails_while_told", admin.user_id)
    runs.perform(engine, run_id)
    jobs_for_tests.FAIL["on"] = False
    with Session(writer(engine)) as session, session.begin():
        assert runs.retry(session, run_id, admin.user_id)
        assert not runs.retry(session, run_id, admin.user_id)  # queued now, not failed
    assert runs.perform(engine, run_id) == "done"
    [run] = runs_of(engine, "fails_while_told")
    assert (run["status"], run["attempt"], run["error"]) == ("done", 2, None)
    assert greetings(engine) == 1


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_whose_worker_died_or_ran_too_long_is_marked_failed_as_abandoned(engine):
    now = clock.now()
    here = socket.gethostname()
    rows = {"dead": (f"{here}:{dead_pid()}", now),
            "alive": (f"{here}:{os.getpid()}", now),
            "elsewhere-stale": ("another-machine:42", now - dt.timedelta(hours=2)),
            "elsewhere-recent": ("another-machine:43", now - dt.timedelta(minutes=5))}
    with Session(engine) as session, session.begin():
        session.execute(sa.insert(sys_job), [
            {"name": "housekeeping", "slot": slot, "status": "running", "params": {},
             "attempt": 1, "queued_at": started, "started_at": started, "counts": {},
             "worker": worker} for slot, (worker, started) in rows.items()])
    with Session(writer(engine)) as session, session.begin():
        runs.abandon(session, now)
    found = {r["slot"]: (r["status"], r["error"] or "") for r in runs_of(engine)}
    assert found["dead"][0] == "failed" and "is no longer running" in found["dead"][1]
    assert found["elsewhere-stale"][0] == "failed" and "30 minutes" in found["elsewhere-stale"][1]
    assert found["alive"] == ("running", "") and found["elsewhere-recent"] == ("running", "")


# PostgreSQL only: SQLite has one writer at a time, so the other transaction would wait.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_run_taken_over_while_it_worked_commits_nothing(engine, admin, test_jobs):
    """Declared abandoned (a slow worker on another machine) and retried: when the first
    attempt finishes after all, its work is rolled back instead of committed twice."""

    def taken_over(session, registry, when):
        with Session(engine) as other, other.begin():
            other.execute(sa.update(sys_job).where(sys_job.c.name == "greet_everyone")
                          .values(attempt=sys_job.c.attempt + 1))
        return jobs_for_tests.greet_everyone(session, registry, when)

    catalogue.install([catalogue.JobDef("greet_everyone", jobs_for_tests.GREET.label,
                                        Daily(dt.time(8, 0)), taken_over)])
    with Session(writer(engine)) as session, session.begin():
        run_id = runs.run_now(session, "greet_everyone", admin.user_id)
    assert runs.perform(engine, run_id) == "failed"
    assert greetings(engine) == 0


# -- the command line ---------------------------------------------------------------------------
@pytest.fixture
def cli(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("METACRM_DATABASE_URL", database_url)
    monkeypatch.setenv("METACRM_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("METACRM_REDIS_URL", raising=False)
    return lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_jobs_run_due_runs_the_due_jobs_in_process_without_redis(cli, engine, shanghai):
    result = cli("jobs", "run-due", "--at", "2026-12-06T03:30")
    assert result.exit_code == 0, result.output
    assert "housekeeping 2026-12-06: done" in result.output
    [run] = runs_of(engine, "housekeeping")
    assert (run["status"], run["slot"]) == ("done", "2026-12-06")
    assert cli("jobs", "run-due", "--at", "2026-12-06T03:40").output.strip() == "0 run(s)"
    listed = cli("jobs", "list").output
    assert "housekeeping: daily at 03:00; last run 2026-12-06 done" in listed


def test_jobs_run_runs_a_job_now_in_a_slot_of_its_own(cli, engine):
    assert cli("jobs", "run", "housekeeping").exit_code == 0
    assert cli("jobs", "run", "housekeeping").exit_code == 0
    assert [r["slot"].startswith("manual:") for r in runs_of(engine, "housekeeping")] == [
        True, True]
    assert cli("jobs", "run", "nothing").exit_code == 1


def test_the_worker_without_redis_says_what_it_needs(cli):
    result = cli("worker", "--burst")
    assert result.exit_code == 1 and "METACRM_REDIS_URL" in result.output
