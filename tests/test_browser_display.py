"""Long values in a real headless Chromium: a 200-character name without spaces wraps (or
is cut, with the full text on hover) and never makes a page wider than the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_browser import chromium, open_as, serve, shot  # noqa: F401 - chromium is a fixture

from metacrm.engine import demo
from metacrm.engine.access import users
from metacrm.engine.flows import transfer
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import records

LONG_NAME = "长" + "Ｘ" * 99 + "x" * 100  # 200 characters, no space anywhere


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def company(request, tmp_path_factory) -> Iterator[dict]:
    found: dict = {}

    def fill(session: Session) -> None:
        users.create_user(session, "admin", "admin-password", is_admin=True)
        demo.populate_org(session)
        registry = metastore.load_registry(session)
        ids = dict(session.execute(select(sys_user.c.username, sys_user.c.id)).all())
        zhang = users.load_actor(session, ids["zhang"])
        row = records.create(session, registry, "customer",
                             {"name": LONG_NAME, "business_type": "standard",
                              "address": "y" * 300}, actor=zhang)
        records.create(session, registry, "contact", {"name": "z" * 100,
                                                      "customer": row["id"]}, actor=zhang)
        # Handed to wang: an "assigned" item on his todo page.
        transfer.transfer(session, registry, zhang, registry.object("customer"), [row["id"]],
                          ids["wang"], old_owner="read")
        found["id"] = row["id"]

    with serve(tmp_path_factory.mktemp("display"), fill, backend=request.param) as (url, engine):
        yield {"url": url, "engine": engine, **found}


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_name_without_spaces_does_not_widen_any_page(chromium, company, width):  # noqa: F811
    context, page = open_as(chromium, company["url"], "wang", width=width)
    for name, url in (("detail", f"/o/customer/{company['id']}"),
                      ("todo", "/todo?tab=assigned"),
                      ("list", "/o/customer"),
                      ("contacts", "/o/contact")):
        page.goto(company["url"] + url)
        assert LONG_NAME[:20] in page.content() or "z" * 20 in page.content()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{url} is {overflow}px wider than the window at {width}px"
        shot(page, f"long-name-{name}-{width}")
    page.goto(company["url"] + "/o/customer")
    cell = page.locator("table.record-list td", has_text=LONG_NAME[:20]).first
    assert cell.get_attribute("title") == LONG_NAME
    context.close()


def test_a_long_name_leaves_a_todos_dates_and_button_on_one_line(chromium, company):  # noqa: F811
    context, page = open_as(chromium, company["url"], "wang")
    page.goto(company["url"] + "/todo?tab=assigned")
    row = page.locator("#todo-list tbody tr", has_text=LONG_NAME[:20])
    lines = """el => { const range = document.createRange(); range.selectNodeContents(el);
        const boxes = Array.from(range.getClientRects()).filter(r => r.width && r.height);
        return new Set(boxes.map(r => Math.round(r.top))).size; }"""
    shot(page, "long-name-todo-cells")
    assert row.locator("td.todo-since").evaluate(lines) == 1, "the date wraps"
    assert row.locator("button").evaluate(lines) == 1, "the button's words wrap"
    context.close()
