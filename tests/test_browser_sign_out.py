"""Signing out everywhere, and an administrator's forced sign-out, pressed in a real
headless Chromium (see tests/test_browser.py): afterwards the user has no session and no
API token left on the server, and a copy of the old session cookie opens no page."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, demo_company, serve  # noqa: F401 - a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine import demo
from metacrm.engine.access import users
from metacrm.engine.systables import sys_api_token, sys_session


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    """The demo company and an administrator, served over HTTP."""
    made: dict = {}

    def fill(session: Session) -> None:
        made["ids"] = demo_company(session)
        users.create_user(session, "admin", PASSWORD, is_admin=True, display_name="管理员")

    with serve(tmp_path_factory.mktemp("sign-out"), fill) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def rows_of(office, table, username: str) -> int:
    with office["engine"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.user_id == office["ids"][username])).scalar_one()


def api_token(office, username: str) -> str:
    request = urllib.request.Request(
        office["url"] + "/api/v1/auth/token", method="POST",
        data=json.dumps({"username": username, "password": demo.DEMO_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 - the test's own server
        return json.load(response)["token"]


def opens_a_page_with(chromium, office, cookies) -> bool:  # noqa: F811
    """Whether a fresh browser given ``cookies`` (an old session's) reaches a list."""
    context = chromium.new_context(locale="zh-CN")
    try:
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(office["url"] + "/o/customer")
        return "/login" not in page.url
    finally:
        context.close()


def test_sign_out_everywhere_from_the_user_menu(chromium, office):  # noqa: F811
    token = api_token(office, "zhang")
    other, _page = signed_in_page(chromium, office["url"], "zhang")
    context, page = signed_in_page(chromium, office["url"], "zhang", accept_dialogs=True)
    try:
        old = context.cookies()
        assert rows_of(office, sys_session, "zhang") >= 2
        assert rows_of(office, sys_api_token, "zhang") >= 1
        page.click("#user-menu-toggle")
        page.click("#sign-out-everywhere")
        page.wait_for_url(re.compile(r".*/login"))
        assert "您已在所有设备上退出" in page.locator(".alert").inner_text()
        assert page.locator("#user-menu").count() == 0
        assert rows_of(office, sys_session, "zhang") == 0
        assert rows_of(office, sys_api_token, "zhang") == 0
        assert not opens_a_page_with(chromium, office, old)
        assert not opens_a_page_with(chromium, office, other.cookies())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(  # noqa: S310
                office["url"] + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}))
        assert refused.value.code == 401
    finally:
        context.close()
        other.close()


def test_an_administrator_forces_a_user_off_from_the_users_page(chromium, office):  # noqa: F811
    api_token(office, "li")
    li, _li_page = signed_in_page(chromium, office["url"], "li")
    context, page = signed_in_page(chromium, office["url"], "admin", password=PASSWORD,
                                   accept_dialogs=True)
    try:
        old = li.cookies()
        page.goto(office["url"] + "/admin/users")
        row = page.locator("tr[data-user=li]")
        assert "强制下线" in row.inner_text()
        row.locator(".sign-out-user").click()
        page.wait_for_selector(".alert-success")
        assert "/admin/users" in page.url
        assert rows_of(office, sys_session, "li") == 0
        assert rows_of(office, sys_api_token, "li") == 0
        assert not opens_a_page_with(chromium, office, old)
        page.goto(office["url"] + "/admin/users")  # the administrator is still signed in
        assert "/login" not in page.url
    finally:
        context.close()
        li.close()
