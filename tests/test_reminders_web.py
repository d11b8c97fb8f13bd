"""The todo centre's reminder kinds over HTTP: the navigation with counts, scenes as
tabs, bulk 标记为已处理, a manager's view of a subordinate's todos, and the JSON API."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_reminder_mark
from metacrm.engine.writing import records

from conftest import signed_in

PASSWORD = "demo-password"
TODAY = dt.date(2026, 3, 10)
CONTACT = "customer.next_contact"


@pytest.fixture(autouse=True)
def shanghai(monkeypatch):
    monkeypatch.setenv("METACRM_TIMEZONE", "Asia/Shanghai")
    clock.reset()
    with clock.frozen("2026-03-10T12:00:00+08:00"):
        yield
    clock.reset()


@pytest.fixture
def customer(engine, people):
    def make(owner: str, name: str, days: int = 0) -> int:
        with Session(engine) as s, s.begin():
            reg = metastore.load_registry(s)
            due = dt.datetime.combine(TODAY + dt.timedelta(days=days), dt.time(15),
                                      clock.zone())
            return records.create(s, reg, "customer", {"name": name, "next_contact_at": due,
                                                       "owner": people[owner].user_id},
                                  actor=people["admin"])["id"]
    return make


def rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-record="(\d+)"', html)]


def marks(engine) -> list[tuple[int, int, int]]:
    m = sys_reminder_mark
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(m.c.user_id, m.c.record_id, m.c.marked_by).order_by(m.c.record_id))]


def test_the_todo_centre_lists_the_rules_with_their_counts(app, customer):
    mine = customer("zhang", "今日客户")
    html = signed_in(app, "zhang", PASSWORD).text(f"/todo?tab={CONTACT}")
    assert rows(html) == [mine]
    assert "今日需联系客户" in html and "今日需联系" in html and "已逾期" in html
    assert re.search(r'id="todo-count">1<', html)  # the navigation badge


def test_a_done_item_is_not_called_overdue(app, engine, people, customer):
    contacted = customer("zhang", "已联系的客户", days=-2)
    with Session(engine) as s, s.begin():
        reg = metastore.load_registry(s)
        records.update_record(s, reg, "customer", contacted, {"last_followup_at": clock.now()},
                       actor=people["admin"])
    html = signed_in(app, "zhang", PASSWORD).text(f"/todo?tab={CONTACT}&scene=done")
    assert rows(html) == [contacted]
    assert "逾期" not in html.split('id="todo-list"')[1]


def test_bulk_mark_handled_writes_marks_and_empties_the_scene(app, engine, people, customer):
    ids = [customer("zhang", f"客户{i}") for i in range(2)]
    zhang = signed_in(app, "zhang", PASSWORD)
    zhang.text(f"/todo?tab={CONTACT}")
    response = zhang.post(f"/todo/{CONTACT}/handled", {"id": [str(i) for i in ids],
                                                       "tab": CONTACT, "scene": "due"})
    assert response.status_code == 302
    me = people["zhang"].user_id
    assert marks(engine) == [(me, ids[0], me), (me, ids[1], me)]
    assert rows(zhang.text(f"/todo?tab={CONTACT}")) == []


def test_a_manager_views_and_marks_a_subordinates_items(app, engine, people, customer):
    theirs = customer("zhang", "张的客户")
    wang = signed_in(app, "wang", PASSWORD)
    zhang_id = people["zhang"].user_id
    assert rows(wang.text(f"/todo?tab={CONTACT}&user={zhang_id}")) == [theirs]
    wang.post(f"/todo/{CONTACT}/handled", {"id": str(theirs), "user": str(zhang_id),
                                           "tab": CONTACT})
    assert marks(engine) == [(zhang_id, theirs, people["wang"].user_id)]


def test_a_strangers_todos_are_not_found(app, people, customer):
    customer("qian", "财务的客户")
    zhang = signed_in(app, "zhang", PASSWORD)
    qian = people["qian"].user_id
    assert zhang.get(f"/todo?tab={CONTACT}&user={qian}").status_code == 404
    zhang.text("/todo")
    assert zhang.post(f"/todo/{CONTACT}/handled", {"id": "1", "user": str(qian)}
                      ).status_code == 404


def test_bulk_handled_needs_the_csrf_token(app, customer):
    mine = customer("zhang", "今日客户")
    zhang = signed_in(app, "zhang", PASSWORD)
    response = zhang.client.post(f"/todo/{CONTACT}/handled", data={"id": str(mine)})
    assert response.status_code == 400


def test_an_unknown_kind_is_not_found(app, customer):
    zhang = signed_in(app, "zhang", PASSWORD)
    zhang.text("/todo")
    assert zhang.post("/todo/nothing.here/handled", {"id": "1"}).status_code == 404


def test_the_api_lists_kinds_items_and_marks_handled(client_of, customer):
    mine = customer("zhang", "今日客户")
    api = client_of("zhang")
    kinds = api.get("/api/v1/todos").get_json()["kinds"]
    contact = next(k for k in kinds if k["name"] == CONTACT)
    assert contact["counts"]["due"] == 1 and contact["label"]["zh"] == "今日需联系客户"
    page = api.get(f"/api/v1/todos/{CONTACT}?scene=due").get_json()
    assert [i["record_id"] for i in page["items"]] == [mine] and page["next"] is None
    done = api.post(f"/api/v1/todos/{CONTACT}/handled", json={"ids": [mine]})
    assert done.status_code == 200 and done.get_json() == {"marked": 1}
    assert api.get(f"/api/v1/todos/{CONTACT}?scene=due").get_json()["items"] == []
