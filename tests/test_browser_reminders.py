"""The todo centre's reminders in a real headless Chromium (SQLite): zhang ticks two of
his customers to contact today and presses 标记为已处理; the server stores a handled
mark for each, and the records keep their version. Screenshot in
test-artifacts/screenshots/todo-reminders.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm import clock
from metacrm.engine.actor import SYSTEM
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_reminder_mark
from metacrm.engine.writing import records

NAMES = ("合肥海纳新材料股份有限公司", "上海华信机械制造股份有限公司", "天津益康新材料有限公司")


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    made: dict = {}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        registry = metastore.load_registry(session)
        noon = dt.datetime.combine(clock.today(), dt.time(12), clock.zone())
        made["ids"] = ids
        made["customers"] = [records.create(session, registry, "customer", {
            "name": name, "owner": ids["zhang"], "next_contact_at": noon}, actor=SYSTEM)["id"]
            for name in NAMES]

    with serve(tmp_path_factory.mktemp("todo-reminders"), fill) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def test_bulk_mark_handled_stores_a_mark_per_ticked_item(chromium, office):  # noqa: F811
    first, second, third = office["customers"]
    context, page = signed_in_page(chromium, office["url"], "zhang")
    page.goto(office["url"] + "/todo?tab=customer.next_contact")
    for record in (first, second):
        page.locator(f"tr[data-record='{record}'] input.todo-tick").check()
    shot(page, "todo-reminders")
    page.locator("#todo-bulk-handled").click()
    page.wait_for_selector(f"tr[data-record='{first}']", state="detached")
    assert page.locator(f"tr[data-record='{third}']").count() == 1
    context.close()

    m = sys_reminder_mark
    table = sa.table("o_customer", sa.column("id"), sa.column("version"))
    with Session(office["engine"]) as s:
        marked = s.execute(sa.select(m.c.record_id, m.c.user_id, m.c.reminder)
                           .order_by(m.c.record_id)).all()
        versions = set(s.execute(sa.select(table.c.version)
                                 .where(table.c.id.in_([first, second]))).scalars())
    zhang = office["ids"]["zhang"]
    assert [tuple(r) for r in marked] == [(first, zhang, "customer.next_contact"),
                                          (second, zhang, "customer.next_contact")]
    assert versions == {1}


def test_on_a_phone_the_owners_name_stays_on_one_line(chromium, office):  # noqa: F811
    context, page = signed_in_page(chromium, office["url"], "zhang", width=360, height=780)
    page.goto(office["url"] + "/todo?tab=customer.next_contact")
    owner = page.locator("tr[data-record] td.todo-owner").last
    lines = owner.evaluate("""cell => {
        const range = document.createRange(); range.selectNodeContents(cell);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }""")
    name = owner.inner_text()
    shot(page, "todo-reminders-phone")
    context.close()
    assert name == "张伟" and lines == 1


def test_a_manager_picks_a_subordinate_and_marks_his_item_handled(chromium, office):  # noqa: F811
    """王经理 chooses 张伟 in "whose todos" (the choice applies at once) and marks the
    customer zhang still has to contact on his behalf: the mark is zhang's, made by wang."""
    third = office["customers"][2]
    zhang, wang = office["ids"]["zhang"], office["ids"]["wang"]
    context, page = signed_in_page(chromium, office["url"], "wang")
    page.goto(office["url"] + "/todo?tab=customer.next_contact")
    assert page.locator(f"tr[data-record='{third}']").count() == 0  # his own todos first
    page.select_option("#todo-whose-user", str(zhang))
    page.wait_for_url(f"**user={zhang}**")
    page.locator(f"tr[data-record='{third}'] input.todo-tick").check()
    page.locator("#todo-bulk-handled").click()
    page.wait_for_selector(f"tr[data-record='{third}']", state="detached")
    context.close()

    m = sys_reminder_mark
    with Session(office["engine"]) as s:
        mark = s.execute(sa.select(m.c.user_id, m.c.marked_by).where(
            m.c.record_id == third)).one()
    assert tuple(mark) == (zhang, wang)
