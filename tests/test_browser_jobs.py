"""Admin → Jobs (后台任务) pressed in a real headless Chromium (see tests/test_browser.py):
Retry of a failed run and Run now of a job, done in-process without Redis, checked in
sys_job afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, serve, shot  # noqa: F401 - a fixture
from test_browser import open_as as signed_in_page

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.systables import sys_job


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    """An administrator and a failed housekeeping run, served over HTTP without Redis."""
    made: dict = {}

    def fill(session: Session) -> None:
        users.create_user(session, "admin", PASSWORD, is_admin=True, display_name="管理员")
        now = clock.now()
        made["failed"] = session.execute(sa.insert(sys_job).values(
            name="housekeeping", slot="2026-01-01", status="failed",
            params={"at": now.isoformat()}, attempt=1, queued_at=now, started_at=now,
            finished_at=now, counts={}, error="abandoned: its worker vm:1 is no longer running",
            worker="vm:1").returning(sys_job.c.id)).scalar_one()

    with serve(tmp_path_factory.mktemp("jobs"), fill) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def runs(office) -> list[dict]:
    with office["engine"].connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(sys_job).order_by(sys_job.c.id))]


def test_retry_of_a_failed_run_and_run_now_from_admin_jobs(chromium, office):  # noqa: F811
    context, page = signed_in_page(chromium, office["url"], "admin", password=PASSWORD)
    try:
        page.click("#admin-menu > a")
        page.click("#admin-jobs-link")
        assert "后台任务" in page.locator("h1").inner_text()
        row = page.locator(f"#job-runs tr[data-run='{office['failed']}']")
        assert "no longer running" in row.locator(".run-error").inner_text()
        row.locator("button.retry").click()
        page.wait_for_load_state()
        assert "已完成" in page.locator(".alert").first.inner_text()
        [retried] = runs(office)
        assert (retried["status"], retried["attempt"], retried["error"]) == ("done", 2, None)
        assert retried["queued_by"] is not None

        page.locator("#job-definitions tr[data-job='housekeeping'] button.run-now").click()
        page.wait_for_load_state()
        [_, manual] = runs(office)
        assert manual["status"] == "done" and manual["slot"].startswith("manual:")
        assert page.locator(f"#job-runs tr[data-run='{manual['id']}'] .run-status"
                            ).inner_text() == "完成"
        shot(page, "admin-jobs")
    finally:
        context.close()
