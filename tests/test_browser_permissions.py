"""Permissions in a real headless Chromium: what a sales rep sees and does.

The demo company (a manager, reps in 华东 and 华北, finance) owns the records. A rep
sees only their own customers, transfers two of them to a colleague while staying on
as a read-only team member, and then finds the edit button gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_browser import chromium, serve, shot  # noqa: F401 - chromium is a fixture

from metacrm.engine import demo
from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_user


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> Iterator[dict]:
    def fill(session: Session) -> None:
        admin = users.create_user(session, "admin", "admin-password", is_admin=True)
        owners = demo.populate_org(session)
        demo.populate(session, metastore.load_registry(session),
                      users.load_actor(session, admin), per_object=40, owners=owners)

    with serve(tmp_path_factory.mktemp("permissions"), fill) as (url, engine):
        yield {"url": url, "engine": engine}


def owned_by(company: dict, username: str) -> int:
    engine = company["engine"]
    with Session(engine) as session:
        registry = metastore.load_registry(session)
        table = registry.table("customer")
        user_id = session.execute(select(sys_user.c.id).where(
            sys_user.c.username == username)).scalar_one()
        return session.execute(select(func.count()).select_from(table).where(
            table.c.owner == user_id, table.c.deleted.is_(False))).scalar_one()


@pytest.fixture
def rep(chromium, company):  # noqa: F811 - the fixture imported above
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda d: d.accept())
    page.goto(company["url"] + "/login")
    page.fill("#username", "zhang")
    page.fill("#password", demo.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/.*"))
    yield page
    context.close()


def test_a_rep_lists_only_their_own_customers(rep, company):
    rep.goto(company["url"] + "/o/customer?count=exact")
    expected = owned_by(company, "zhang")
    assert re.search(rf"\b{expected}\b", rep.locator("#total").inner_text())
    assert rep.locator("table.record-list tbody tr").count() == min(expected, 20)
    assert rep.locator("#export-menu").count() == 0  # the rep role may not export
    assert rep.locator("#new-record").count() == 1
    shot(rep, "permissions-rep-list")


def test_a_rep_transfers_customers_and_stays_on_as_a_read_only_member(rep, company):
    before = owned_by(company, "zhang")
    rep.goto(company["url"] + "/o/customer")
    boxes = rep.locator(".row-select")
    boxes.nth(0).check()
    boxes.nth(1).check()
    first_title = rep.locator("a.record-link").nth(0).inner_text()
    rep.click("#bulk-transfer")
    rep.select_option("#transfer-owner", label="李娜")
    rep.check("#old-owner-read")
    shot(rep, "permissions-transfer")
    rep.click("#transfer-submit")
    rep.wait_for_selector(".alert-success")
    assert owned_by(company, "zhang") == before - 2
    rep.click(f"a.record-link:text-is('{first_title}')")
    rep.wait_for_selector("#record-title")
    assert rep.locator("#edit-record").count() == 0  # read-only now
    rep.click("#team-tab")
    members = rep.locator("#team-members tbody tr")
    assert members.count() == 2
    assert "李娜" in members.nth(0).inner_text()
    assert "只读" in members.nth(1).inner_text()
    shot(rep, "permissions-team")


@pytest.fixture
def admin_page(chromium, company):  # noqa: F811 - the fixture imported above
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(company["url"] + "/login")
    page.fill("#username", "admin")
    page.fill("#password", "admin-password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/.*"))
    yield page
    context.close()


def test_an_admin_widens_a_role_in_the_grid_and_the_rep_sees_more(admin_page, rep, company):
    admin_page.click("#admin-menu > a")
    admin_page.click("#admin-menu >> text=角色")
    admin_page.click("text=销售员")
    row = admin_page.locator("#grid tr[data-object=customer]")
    row.locator("select").first.select_option("department_tree")
    shot(admin_page, "admin-role-grid")
    admin_page.click("#save-grants")
    admin_page.wait_for_selector(".alert-success")
    assert admin_page.locator("#grid tr[data-object=customer] select").first \
        .input_value() == "department_tree"
    rep.goto(company["url"] + "/o/customer?count=exact")
    east = owned_by(company, "zhang") + owned_by(company, "li")
    assert re.search(rf"\b{east}\b", rep.locator("#total").inner_text())


def test_an_admin_asks_why_a_rep_may_not_edit_a_record(admin_page, company):
    engine = company["engine"]
    with Session(engine) as session:
        table = metastore.load_registry(session).table("customer")
        zhao = session.execute(select(sys_user.c.id).where(sys_user.c.username == "zhao")
                               ).scalar_one()
        record_id = session.execute(select(table.c.id).where(table.c.owner == zhao)
                                    .limit(1)).scalar_one()
        zhang = session.execute(select(sys_user.c.id).where(sys_user.c.username == "zhang")
                                ).scalar_one()
    admin_page.goto(f"{company['url']}/admin/explain?user_id={zhang}&object=customer"
                    f"&record_id={record_id}&operation=edit")
    assert admin_page.locator("#denied").count() == 1
    assert "销售员" in admin_page.locator("#reasons").inner_text()
    shot(admin_page, "admin-explain")
