"""Admin → Jobs over HTTP (the Flask test client): admins only, CSRF, unknown runs and
jobs are 404, a run that is not failed is not retried; and the background thread that
``metacrm run`` starts without Redis runs the due jobs."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.jobs import in_process
from metacrm.engine.systables import sys_job

from conftest import signed_in


def statuses(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(sys_job.c.name, sys_job.c.status).order_by(sys_job.c.id))]


def test_admin_jobs_shows_the_catalogue_and_its_runs(web, engine):
    assert web.post("/admin/jobs/housekeeping/run").status_code == 302
    page = web.text("/admin/jobs/")
    assert "后台任务" in page and "系统清理" in page and "每天 03:00" in page
    assert statuses(engine) == [("housekeeping", "done")]


def test_admin_jobs_names_the_counts_and_shows_slots_as_the_admin_reads_them(
        web, engine, monkeypatch):
    monkeypatch.setenv("METACRM_TIMEZONE", "Asia/Shanghai")
    clock.reset()
    try:
        with clock.frozen("2026-03-10T12:07:00+08:00"):
            in_process.run_due(engine)
            web.post("/admin/jobs/reminders/run")
            page = web.text("/admin/jobs/")
    finally:
        clock.reset()
    slots = re.findall(r'class="small text-break run-slot" title="[^"]*">([^<]*)<', page)
    assert sorted(slots) == ["2026-03-10", "2026-03-10 12:00", "手动"]  # 12:00 is 04:00Z
    counts = re.findall(r'class="me-2 run-count" data-key="([^"]*)">([^<]*)<', page)
    assert ("sessions", "过期会话: 0") in counts
    assert ("contract.expiry", "即将到期的合同: 0") in counts


def test_admin_jobs_is_for_administrators_only(app, engine, admin):
    with Session(engine) as session, session.begin():
        users.create_user(session, "rep", "rep-password-long")
    rep = signed_in(app, "rep", "rep-password-long")
    assert rep.get("/admin/jobs/").status_code == 403
    assert rep.post("/admin/jobs/housekeeping/run").status_code == 403
    assert statuses(engine) == []


def test_unknown_runs_and_jobs_are_not_found_and_a_form_needs_its_token(web, engine):
    assert web.post("/admin/jobs/runs/999/retry").status_code == 404
    assert web.post("/admin/jobs/nothing/run").status_code == 404
    assert web.client.post("/admin/jobs/housekeeping/run").status_code == 400
    assert statuses(engine) == []


def test_a_page_past_every_run_is_empty_not_a_server_error(web, engine):
    web.post("/admin/jobs/housekeeping/run")
    for page in ("9223372036854775807", "99999999999999999999999", "-3", "x"):
        assert web.get(f"/admin/jobs/?page={page}").status_code == 200
    assert 'data-run="' in web.text("/admin/jobs/?page=-3")  # the first page


def test_a_run_that_did_not_fail_is_not_retried(web, engine):
    web.post("/admin/jobs/housekeeping/run")
    with engine.connect() as conn:
        run_id = conn.execute(sa.select(sys_job.c.id)).scalar_one()
    page = web.post(f"/admin/jobs/runs/{run_id}/retry", follow_redirects=True)
    assert "只有失败的运行才能重试" in page.get_data(as_text=True)
    assert statuses(engine) == [("housekeeping", "done")]


def test_the_background_thread_runs_the_due_jobs(engine):
    thread = in_process.Background(engine, interval=0.05)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while {("housekeeping", "done"), ("reminders", "done")} - set(statuses(engine)):
            assert time.monotonic() < deadline, statuses(engine)
            time.sleep(0.05)
    finally:
        thread.stop()
        thread.join(5)
    # Each round found the nightly slot taken (the quarter-hourly one may have moved on).
    assert [s for s in statuses(engine) if s[0] == "housekeeping"] == [("housekeeping", "done")]
