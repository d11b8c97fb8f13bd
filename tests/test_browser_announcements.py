"""Announcements (公告) in a real headless Chromium: an admin publishes one in Admin → 公告,
a rep sees it counted in the navigation, opens it and marks it read; the server stores the
read mark. Screenshots in test-artifacts/screenshots/announcement-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine import demo
from metacrm.engine.access import users
from metacrm.engine.systables import sys_announcement, sys_announcement_read


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    made: dict = {}

    def fill(session: Session) -> None:
        made["ids"] = demo_company(session)
        users.create_user(session, "admin", demo.DEMO_PASSWORD, is_admin=True,
                          display_name="管理员")

    with serve(tmp_path_factory.mktemp("announcements"), fill) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def test_an_admin_publishes_and_a_rep_reads_it(chromium, office):  # noqa: F811
    url = office["url"]
    context, page = signed_in_page(chromium, url, "admin")
    page.goto(url + "/admin/announcements")
    page.fill("#title", "系统升级通知")
    page.fill("#body", "今晚 22:00 起升级。\n预计一小时。")
    page.click("#publish")
    page.wait_for_selector("#announcements tr[data-announcement]")
    shot(page, "announcement-admin")
    context.close()
    with Session(office["engine"]) as s:
        announcement_id = s.execute(sa.select(sys_announcement.c.id)).scalar_one()

    context, page = signed_in_page(chromium, url, "zhang")
    assert page.locator("#announcement-count").inner_text() == "1"
    page.click("#nav-announcements")
    card = page.locator(f"article[data-announcement='{announcement_id}']")
    assert "unread" in card.get_attribute("class")
    assert card.locator(".announcement-body").inner_text() == "今晚 22:00 起升级。\n预计一小时。"
    shot(page, "announcement-unread")
    card.locator("button.mark-read").click()
    page.wait_for_selector(f"article.announcement:not(.unread)[data-announcement="
                           f"'{announcement_id}']")
    assert page.locator("#announcement-count").count() == 0
    context.close()

    r = sys_announcement_read
    with Session(office["engine"]) as s:
        marked = s.execute(sa.select(r.c.announcement_id).where(
            r.c.user_id == office["ids"]["zhang"])).scalars().all()
    assert marked == [announcement_id]


def test_an_admin_edits_then_deletes_and_a_rep_reads_all(chromium, office):  # noqa: F811
    """Save on an announcement's page changes it; 全部标为已读 marks every unread one; the
    delete button (after its confirmation) removes it."""
    url, a = office["url"], sys_announcement
    context, page = signed_in_page(chromium, url, "admin", accept_dialogs=True)
    for title in ("季度会议", "放假安排"):
        page.goto(url + "/admin/announcements")
        page.fill("#title", title)
        page.fill("#body", "详见邮件。")
        page.click("#publish")
        page.wait_for_selector("#announcements tr[data-announcement]")
    with Session(office["engine"]) as s:
        ids = dict(s.execute(sa.select(a.c.title, a.c.id)).all())
    page.goto(f"{url}/admin/announcements/{ids['季度会议']}")
    page.fill("#title", "季度会议改期")
    page.click("#save-announcement")
    page.wait_for_load_state()
    with Session(office["engine"]) as s:
        assert s.execute(sa.select(a.c.title).where(a.c.id == ids["季度会议"])).scalar_one() \
            == "季度会议改期"

    rep, rep_page = signed_in_page(chromium, url, "li")
    rep_page.click("#nav-announcements")
    rep_page.click("#read-all-announcements")
    rep_page.wait_for_selector("article.announcement.unread", state="detached")
    rep.close()
    r = sys_announcement_read
    with Session(office["engine"]) as s:
        read = set(s.execute(sa.select(r.c.announcement_id).where(
            r.c.user_id == office["ids"]["li"])).scalars())
    assert {ids["季度会议"], ids["放假安排"]} <= read

    page.goto(f"{url}/admin/announcements/{ids['放假安排']}")
    page.click("#delete-announcement")
    page.wait_for_url("**/admin/announcements")
    context.close()
    with Session(office["engine"]) as s:
        left = set(s.execute(sa.select(a.c.id)).scalars())
    assert ids["放假安排"] not in left and ids["季度会议"] in left
