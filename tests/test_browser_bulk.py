"""Every bulk action a list offers, pressed in a real headless Chromium, and what the
server stored afterwards: delete selected, transfer selected (with the old owner kept on
the team and related records following), and restore from the recycle bin.

The records each test acts on are its own (named after the test) and found with the
list's keyword search, so the tests do not depend on one another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_browser import chromium, open_as, serve, shot  # noqa: F401 - chromium is a fixture

from metacrm.engine import demo
from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_team_member, sys_user
from metacrm.engine.writing import records

CUSTOMERS = {
    "delete": ["批量删除甲公司", "批量删除乙公司", "批量删除丙公司"],
    "decline": ["拒绝删除甲公司", "拒绝删除乙公司"],
    "transfer": ["批量转移甲公司", "批量转移乙公司", "批量转移丙公司"],
    "no-owner": ["未选负责人甲公司"],
    "restore": ["回收站恢复甲公司"],
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def company(request, tmp_path_factory) -> Iterator[dict]:
    def fill(session: Session) -> None:
        users.create_user(session, "admin", "admin-password", is_admin=True)
        demo.populate_org(session)
        registry = metastore.load_registry(session)
        zhang = users.load_actor(session, session.execute(select(sys_user.c.id).where(
            sys_user.c.username == "zhang")).scalar_one())
        for names in CUSTOMERS.values():
            for name in names:
                row = records.create(session, registry, "customer",
                                     {"name": name, "business_type": "standard"}, actor=zhang)
                records.create(session, registry, "contact",
                               {"name": f"{name}联系人", "customer": row["id"]}, actor=zhang)

    with serve(tmp_path_factory.mktemp("bulk"), fill, backend=request.param) as (url, engine):
        yield {"url": url, "engine": engine}


@pytest.fixture
def rep(chromium, company):  # noqa: F811 - the fixture imported above
    """zhang, a sales rep who owns the test customers; confirmations are accepted."""
    context, page = open_as(chromium, company["url"], "zhang")
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.accept()))
    yield page
    context.close()


def stored(company: dict, object_name: str, names: list[str], *,
           field: str = "name") -> dict[str, dict]:
    """The rows named ``names`` as the database holds them, deleted or not."""
    with Session(company["engine"]) as session:
        table = metastore.load_registry(session).table(object_name)
        rows = session.execute(select(table).where(table.c[field].in_(names))).mappings()
        return {r[field]: dict(r) for r in rows}


def user_id(company: dict, username: str) -> int:
    with Session(company["engine"]) as session:
        return session.execute(select(sys_user.c.id).where(
            sys_user.c.username == username)).scalar_one()


def search(page, company: dict, q: str) -> None:
    page.goto(f"{company['url']}/o/customer?q={q}")


def tick(page, names: list[str]) -> None:
    for name in names:
        page.locator("table.record-list tbody tr", has_text=name).locator(".row-select").check()


def test_delete_selected_moves_the_ticked_records_to_the_recycle_bin(rep, company):
    doomed, kept = CUSTOMERS["delete"][:2], CUSTOMERS["delete"][2]
    search(rep, company, "批量删除")
    tick(rep, doomed)
    rep.click("#bulk-delete")
    rep.wait_for_selector(".alert-success")
    assert rep.dialogs == ["确定将选中的记录移入回收站吗？"]
    assert "已将 2 条记录移入回收站" in rep.locator(".alert-success").inner_text()
    rows = stored(company, "customer", CUSTOMERS["delete"])
    assert [n for n in CUSTOMERS["delete"] if rows[n]["deleted"]] == doomed
    assert all(rows[n]["deleted_at"] is not None for n in doomed)
    assert not rows[kept]["deleted"]
    assert rep.locator("table.record-list tbody").inner_text().count("批量删除") == 1
    shot(rep, "bulk-delete")


def test_declining_the_confirmation_deletes_nothing(chromium, company):  # noqa: F811
    context, page = open_as(chromium, company["url"], "zhang")
    page.on("dialog", lambda d: d.dismiss())
    search(page, company, "拒绝删除")
    page.click("#select-all")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.click("#bulk-delete")
    page.wait_for_timeout(300)
    assert sent == []
    assert not any(r["deleted"] for r in stored(company, "customer",
                                                CUSTOMERS["decline"]).values())
    context.close()


def test_transfer_selected_gives_the_records_and_their_contacts_to_the_new_owner(rep,
                                                                                  company):
    moved, kept = CUSTOMERS["transfer"][:2], CUSTOMERS["transfer"][2]
    search(rep, company, "批量转移")
    tick(rep, moved)
    rep.click("#bulk-transfer")
    rep.select_option("#transfer-owner", label="李娜")
    rep.check("#old-owner-write")
    rep.check("#cascade-contact-customer")
    rep.click("#transfer-submit")
    rep.wait_for_selector(".alert-success")
    li, zhang = user_id(company, "li"), user_id(company, "zhang")
    rows = stored(company, "customer", CUSTOMERS["transfer"])
    assert {n: rows[n]["owner"] for n in CUSTOMERS["transfer"]} == {
        moved[0]: li, moved[1]: li, kept: zhang}
    contacts = stored(company, "contact", [f"{n}联系人" for n in CUSTOMERS["transfer"]])
    assert {n: c["owner"] for n, c in contacts.items()} == {
        f"{moved[0]}联系人": li, f"{moved[1]}联系人": li, f"{kept}联系人": zhang}
    with Session(company["engine"]) as session:
        team = session.execute(select(sys_team_member.c.record_id, sys_team_member.c.user_id,
                                      sys_team_member.c.access).where(
            sys_team_member.c.object == "customer",
            sys_team_member.c.record_id.in_([rows[n]["id"] for n in moved]))).all()
    assert sorted(team) == sorted((rows[n]["id"], zhang, "write") for n in moved)


def test_transfer_without_a_new_owner_is_not_sent(rep, company):
    name = CUSTOMERS["no-owner"][0]
    search(rep, company, name)
    tick(rep, [name])
    rep.click("#bulk-transfer")
    sent: list[str] = []
    rep.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    rep.click("#transfer-submit")
    rep.wait_for_timeout(300)
    assert sent == []
    assert rep.evaluate("document.getElementById('transfer-owner').validity.valueMissing")
    assert stored(company, "customer", [name])[name]["owner"] == user_id(company, "zhang")


def test_restore_from_the_recycle_bin_brings_the_record_back(rep, company):
    name = CUSTOMERS["restore"][0]
    search(rep, company, name)
    tick(rep, [name])
    rep.click("#bulk-delete")
    rep.wait_for_selector(".alert-success")
    assert stored(company, "customer", [name])[name]["deleted"]
    rep.goto(company["url"] + "/o/customer/recycle-bin")
    rep.locator("#recycle-bin tr", has_text=name).get_by_role("button").click()
    rep.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    row = stored(company, "customer", [name])[name]
    assert not row["deleted"] and row["deleted_at"] is None
    assert rep.locator("#record-title").inner_text() == name
    search(rep, company, name)
    assert rep.locator("a.record-link", has_text=name).count() == 1
