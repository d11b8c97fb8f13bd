"""Reminder rules (待办 in 千丝CRM), on a frozen clock, on SQLite and PostgreSQL.

The sample template's rules: ``customer.next_contact`` (今日需联系 / 已逾期 / 已联系,
in the badge) and ``contract.expiry`` (即将到期 within the business setting
``contract_expiry_days`` before the end date, contracts in force, notified). The demo
company (``people``): 王经理 wang is the superior of zhang, li and zhao; qian is finance.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import customise
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.flows import reminders, todo_kinds
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_notification, sys_reminder_mark
from metacrm.engine.writing import records
from metacrm.metadata import edits
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths

TODAY = dt.date(2026, 3, 10)
NOON = "2026-03-10T12:00:00+08:00"
ZONE = "Asia/Shanghai"


@pytest.fixture(autouse=True)
def shanghai(monkeypatch):
    monkeypatch.setenv("METACRM_TIMEZONE", ZONE)
    clock.reset()
    with clock.frozen(NOON):
        yield
    clock.reset()


def at(day: dt.date, hour: int = 15) -> dt.datetime:
    """A time of that day in the instance's zone."""
    return dt.datetime.combine(day, dt.time(hour), clock.zone())


class Desk:
    def __init__(self, engine, people):
        self.engine, self.people = engine, people
        self.reload()

    def reload(self) -> None:
        with Session(self.engine) as s:
            self.registry = metastore.load_registry(s)

    def create(self, who: str, object_name: str, **values) -> int:
        with Session(self.engine) as s, s.begin():
            return records.create(s, self.registry, object_name, values,
                                  actor=self.people[who])["id"]

    def customer(self, who: str, name: str, next_contact: dt.datetime | None) -> int:
        return self.create(who, "customer", name=name, next_contact_at=next_contact)

    def contract(self, who: str, name: str, end: dt.date, status: str = "active") -> int:
        customer = self.customer(who, f"{name}客户", None)
        return self.create(who, "contract", name=name, customer=customer, amount=1000,
                           start_date=end - dt.timedelta(days=365), end_date=end,
                           status=status)

    def kind(self, key: str):
        return todo_kinds.catalogue(self.registry)[key]

    def listed(self, who: str, key: str, scene: str, whose: str = "") -> list[int]:
        with Session(self.engine) as s:
            actor = self.people[who]
            users = todo_kinds.whose(s, actor, whose)
            found = self.kind(key).page(s, self.registry, actor, scene, users)
            return [item["record_id"] for item in found.items]

    def counts(self, who: str, key: str) -> dict[str, int]:
        with Session(self.engine) as s:
            return self.kind(key).counts(s, self.registry, self.people[who],
                                         [self.people[who].user_id])

    def badge(self, who: str) -> int:
        with Session(self.engine) as s:
            return todo_kinds.badges(s, self.registry, self.people[who])["todos"]

    def mark(self, who: str, key: str, ids: list[int], whose: str = "") -> int:
        with Session(self.engine) as s, s.begin():
            actor = self.people[who]
            users = todo_kinds.whose(s, actor, whose)
            return self.kind(key).mark(s, self.registry, actor, ids, users)

    def version(self, object_name: str, record_id: int) -> int:
        table = self.registry.table(object_name)
        with Session(self.engine) as s:
            return s.execute(sa.select(table.c.version).where(table.c.id == record_id)).scalar_one()


@pytest.fixture
def desk(engine, people) -> Desk:
    return Desk(engine, people)


CONTACT, EXPIRY = "customer.next_contact", "contract.expiry"


def test_a_customer_to_contact_today_is_due_and_counted_in_the_badge(desk):
    customer = desk.customer("zhang", "今日客户", at(TODAY))
    desk.customer("zhang", "明日客户", at(TODAY + dt.timedelta(days=1)))
    assert desk.listed("zhang", CONTACT, "due") == [customer]
    assert desk.counts("zhang", CONTACT)["due"] == 1
    assert desk.badge("zhang") == 1


def test_a_contact_just_after_midnight_in_the_zone_is_today(desk):
    early = desk.customer("zhang", "凌晨客户", at(TODAY, 0))  # 2026-03-09 16:00 UTC
    late = desk.customer("zhang", "昨夜客户", at(TODAY - dt.timedelta(days=1), 23))
    assert desk.listed("zhang", CONTACT, "due") == [early]
    assert desk.listed("zhang", CONTACT, "overdue") == [late]


def test_the_next_day_it_is_overdue_and_no_longer_counted(desk):
    customer = desk.customer("zhang", "今日客户", at(TODAY))
    with clock.frozen("2026-03-11T09:00:00+08:00"):
        assert desk.listed("zhang", CONTACT, "due") == []
        assert desk.listed("zhang", CONTACT, "overdue") == [customer]
        assert desk.badge("zhang") == 0


def test_a_customer_followed_up_today_is_contacted(desk):
    customer = desk.customer("zhang", "已联系客户", at(TODAY))
    with Session(desk.engine) as s, s.begin():
        records.update_record(s, desk.registry, "customer", customer,
                       {"last_followup_at": at(TODAY, 10)}, actor=desk.people["zhang"])
    assert desk.listed("zhang", CONTACT, "due") == []
    assert desk.listed("zhang", CONTACT, "done") == [customer]


def test_a_handled_mark_removes_the_item_without_changing_the_record(desk):
    customer = desk.customer("zhang", "今日客户", at(TODAY))
    version = desk.version("customer", customer)
    assert desk.mark("zhang", CONTACT, [customer]) == 1
    assert desk.listed("zhang", CONTACT, "due") == [] and desk.badge("zhang") == 0
    assert desk.version("customer", customer) == version
    with Session(desk.engine) as s:
        mark = s.execute(sa.select(sys_reminder_mark)).one()
    assert (mark.user_id, mark.reminder, mark.record_id) == (
        desk.people["zhang"].user_id, CONTACT, customer)


def test_a_new_due_date_brings_a_handled_item_back(desk):
    customer = desk.customer("zhang", "改期客户", at(TODAY - dt.timedelta(days=2)))
    desk.mark("zhang", CONTACT, [customer])
    assert desk.listed("zhang", CONTACT, "overdue") == []
    with Session(desk.engine) as s, s.begin():
        records.update_record(s, desk.registry, "customer", customer, {"next_contact_at": at(TODAY)},
                       actor=desk.people["zhang"])
    assert desk.listed("zhang", CONTACT, "due") == [customer]


def test_bulk_handled_marks_each_item_once(desk):
    ids = [desk.customer("zhang", f"客户{i}", at(TODAY)) for i in range(3)]
    assert desk.mark("zhang", CONTACT, ids) == 3
    assert desk.mark("zhang", CONTACT, ids) == 3  # again: the same marks, upserted
    assert desk.listed("zhang", CONTACT, "due") == []
    with Session(desk.engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(sys_reminder_mark)).scalar() == 3


def test_a_contract_ending_within_the_setting_is_listed_and_one_day_later_is_not(desk):
    inside = desk.contract("zhang", "七天后到期", TODAY + dt.timedelta(days=7))
    outside = desk.contract("zhang", "八天后到期", TODAY + dt.timedelta(days=8))
    desk.contract("zhang", "草稿合同", TODAY + dt.timedelta(days=3), status="draft")
    assert desk.listed("zhang", EXPIRY, "due") == [inside]
    customise.change(desk.engine, "admin", "contract expiry: 10 days",
                     lambda draft: edits.set_settings(draft, {"contract_expiry_days": 10}))
    desk.reload()
    assert desk.listed("zhang", EXPIRY, "due") == [inside, outside]


def test_a_finished_contract_is_in_the_done_scene(desk):
    finished = desk.contract("zhang", "已结束合同", TODAY + dt.timedelta(days=2), "finished")
    assert desk.listed("zhang", EXPIRY, "due") == []
    assert desk.listed("zhang", EXPIRY, "done") == [finished]


def test_a_manager_sees_a_subordinates_items_and_marks_them_on_their_behalf(desk):
    mine = desk.customer("zhang", "张的客户", at(TODAY))
    zhang = str(desk.people["zhang"].user_id)
    assert desk.listed("wang", CONTACT, "due", zhang) == [mine]
    assert desk.listed("wang", CONTACT, "due", "all") == [mine]
    assert desk.listed("wang", CONTACT, "due") == []  # his own: none
    desk.mark("wang", CONTACT, [mine], "all")
    assert desk.listed("zhang", CONTACT, "due") == []
    with Session(desk.engine) as s:
        mark = s.execute(sa.select(sys_reminder_mark)).one()
    assert mark.user_id == desk.people["zhang"].user_id
    assert mark.marked_by == desk.people["wang"].user_id


def test_a_manager_cannot_see_or_mark_a_strangers_items(desk):
    theirs = desk.create("admin", "customer", name="财务的客户", next_contact_at=at(TODAY),
                         owner=desk.people["qian"].user_id)
    with Session(desk.engine) as s, pytest.raises(RecordNotFound):
        todo_kinds.whose(s, desk.people["wang"], str(desk.people["qian"].user_id))
    assert theirs not in desk.listed("wang", CONTACT, "due", "all")
    with pytest.raises(RecordNotFound):
        desk.mark("wang", CONTACT, [theirs], "all")
    with pytest.raises(RecordNotFound):
        desk.mark("zhang", CONTACT, [theirs])


def test_a_rep_cannot_look_at_a_peers_todos(desk):
    with Session(desk.engine) as s, pytest.raises(RecordNotFound):
        todo_kinds.whose(s, desk.people["zhang"], str(desk.people["li"].user_id))


def test_the_catalogue_lists_built_in_kinds_then_the_rules(desk):
    names = list(todo_kinds.catalogue(desk.registry))
    assert names[:3] == ["approvals", "assigned", "stage_work"]
    assert {CONTACT, EXPIRY, "opportunity.next_contact"} <= set(names)
    assert [s.label.zh for s in desk.kind(CONTACT).scenes] == ["今日需联系", "已逾期", "已联系"]


def test_notify_due_twice_writes_each_notification_once(desk):
    contract = desk.contract("zhang", "将到期合同", TODAY + dt.timedelta(days=5))
    with Session(desk.engine) as s, s.begin():
        first = reminders.notify_due(s, desk.registry, clock.now())
    with Session(desk.engine) as s, s.begin():
        second = reminders.notify_due(s, desk.registry, clock.now())
    assert first == {EXPIRY: 1} and second == {EXPIRY: 0}
    with Session(desk.engine) as s:
        [note] = s.execute(sa.select(sys_notification)).all()
    assert note.user_id == desk.people["zhang"].user_id and note.record_id == contract
    assert note.kind == "reminder" and note.dedupe_key == f"reminder:{EXPIRY}:{contract}:" \
        f"{TODAY + dt.timedelta(days=5)}"
    assert note.params == {"reminder": EXPIRY,
                           "message": {"en": "Contracts ending soon: 将到期合同",
                                       "zh": "即将到期的合同：将到期合同"}}


def test_the_page_and_the_counts_read_one_statement_each(desk, count_queries):
    for i in range(3):
        desk.customer("zhang", f"客户{i}", at(TODAY))
    zhang, kind = desk.people["zhang"], desk.kind(CONTACT)
    with Session(desk.engine) as s:
        kind.page(s, desk.registry, zhang, "due", [zhang.user_id])  # the access, read once
        with count_queries() as counted:
            assert len(kind.page(s, desk.registry, zhang, "due", [zhang.user_id]).items) == 3
            assert kind.counts(s, desk.registry, zhang, [zhang.user_id])["due"] == 3
    assert counted.count == 2


def test_schema_sync_indexes_the_recipient_and_the_date(desk):
    names = {i.name for i in desk.registry.table("customer").indexes}
    assert "ix_o_customer_owner_next_contact_at" in names


BAD = """
object: thing
label: {en: Thing, zh: 物品}
title_field: name
features: [owner]
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - {name: due_on, type: date, label: {en: Due, zh: 到期}}
reminders:
  - name: due
    label: {en: Due, zh: 到期}
    field: %s
    to: %s
    offset: %s
    condition: %s
    scenes:
      due: {en: Due, zh: 即将到期}
      overdue: {en: Overdue, zh: 已逾期}
      done: {en: Done, zh: 已完成}
"""


def problems(tmp_path: Path, field: str = "due_on", to: str = "owner", offset: str = "-3",
             condition: str = "name != ''") -> list[str]:
    (tmp_path / "thing.yaml").write_text(BAD % (field, to, offset, condition), "utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_paths([tmp_path])
    return [str(p) for p in caught.value.problems]


def test_validate_refuses_a_reminder_on_a_missing_field(tmp_path):
    found = problems(tmp_path, field="due_date")
    assert any("thing.yaml: reminders[0].field" in p and "due_date" in p for p in found), found


def test_validate_refuses_a_reminder_on_a_text_field(tmp_path):
    found = problems(tmp_path, field="name")
    assert any("reminders[0].field" in p and "date or datetime" in p for p in found), found


def test_validate_refuses_an_unknown_setting_and_a_user_field_that_is_not_one(tmp_path):
    found = problems(tmp_path, to="name", offset="{setting: nope}")
    assert any("reminders[0].offset.setting" in p and "nope" in p for p in found), found
    assert any("reminders[0].to" in p for p in found), found


def test_validate_refuses_a_condition_that_cannot_run_in_sql(tmp_path):
    found = problems(tmp_path, condition="len(name) > 3")
    assert any("reminders[0].condition" in p and "database" in p for p in found), found
