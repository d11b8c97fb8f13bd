"""What a transfer tells the new owner: a notification per object, an "assigned" todo
per record; the records' open stage work follows them to the new owner.

The demo company (``people``): 王经理 wang (sales manager, may transfer his reps'
records), the reps zhang and li.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.flows import todos, transfer
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_notification, sys_todo
from metacrm.engine.writing import records


@pytest.fixture
def engine(flows_engine):
    return flows_engine


class Desk:
    def __init__(self, session: Session, registry: Registry, people: dict[str, Actor]):
        self.session, self.registry, self.people = session, registry, people

    def id(self, name: str) -> int:
        return self.people[name].user_id

    def customer(self, owner: str, name: str = "客户") -> int:
        return records.create(self.session, self.registry, "customer", {"name": name},
                              actor=self.people[owner])["id"]

    def deal(self, owner: str, customer: int | None = None, name: str = "商机") -> int:
        row = records.create(self.session, self.registry, "opportunity",
                             {"name": name, "customer": customer or self.customer(owner, f"{name}客户"),
                              "business_type": "standard"}, actor=self.people[owner])
        self.session.commit()
        return row["id"]

    def transfer(self, who: str, object_name: str, ids: list[int], to: str, **kw
                 ) -> transfer.TransferResult:
        result = transfer.transfer(self.session, self.registry, self.people[who],
                                   self.registry.object(object_name), ids, self.id(to), **kw)
        self.session.commit()
        return result

    def notifications(self, user: str) -> list[tuple[str, str, int | None, dict]]:
        n = sys_notification
        return [tuple(r) for r in self.session.execute(
            sa.select(n.c.kind, n.c.object, n.c.record_id, n.c.params)
            .where(n.c.user_id == self.id(user)).order_by(n.c.id))]

    def todos(self, user: str, kind: str) -> list[int]:
        return [t["record_id"] for t in todos.open_todos(self.session, self.id(user), kind=kind)]


@pytest.fixture
def desk(session, registry, people) -> Desk:
    return Desk(session, registry, people)


def test_the_new_owner_is_notified_of_a_transferred_record(desk):
    deal = desk.deal("zhang")
    desk.transfer("wang", "opportunity", [deal], "li")
    assert desk.notifications("li") == [("record_transferred", "opportunity", deal,
                                         {"count": 1})]


def test_several_records_make_one_notification_with_their_count(desk):
    deals = [desk.deal("zhang", name=n) for n in ("一", "二", "三")]
    desk.transfer("wang", "opportunity", deals, "li")
    assert desk.notifications("li") == [("record_transferred", "opportunity", None,
                                         {"count": 3})]


def test_records_moved_along_make_a_notification_of_their_own(desk):
    customer = desk.customer("zhang")
    deal = desk.deal("zhang", customer)
    desk.transfer("wang", "customer", [customer], "li", cascade=["opportunity.customer"])
    assert desk.notifications("li") == [
        ("record_transferred", "customer", customer, {"count": 1}),
        ("record_transferred", "opportunity", deal, {"count": 1})]
    assert sorted(desk.todos("li", "assigned")) == sorted([customer, deal])


def test_each_transferred_record_is_assigned_to_the_new_owner(desk):
    deals = [desk.deal("zhang", name=n) for n in ("一", "二")]
    desk.transfer("wang", "opportunity", deals, "li")
    assert sorted(desk.todos("li", "assigned")) == deals
    assert desk.todos("zhang", "assigned") == []


def test_the_assigned_todos_are_written_in_one_statement(desk, count_queries):
    deals = [desk.deal("zhang", name=n) for n in ("一", "二", "三")]
    with count_queries() as counter:
        desk.transfer("wang", "opportunity", deals, "li")
    inserts = [s for s in counter.statements if s.startswith("INSERT INTO sys_todo")]
    assert len(inserts) == 1


def test_taking_records_oneself_notifies_no_one_and_assigns_nothing(desk):
    deal = desk.deal("zhang")
    desk.transfer("wang", "opportunity", [deal], "wang")
    assert desk.notifications("wang") == [] and desk.todos("wang", "assigned") == []


def test_the_old_owner_is_not_notified(desk):
    desk.transfer("wang", "opportunity", [desk.deal("zhang")], "li")
    assert desk.notifications("zhang") == [] and desk.notifications("wang") == []


def test_open_stage_work_follows_the_record_to_its_new_owner(desk):
    deal = desk.deal("zhang")
    assert desk.todos("zhang", "stage_work") == [deal]
    desk.transfer("wang", "opportunity", [deal], "li")
    assert desk.todos("zhang", "stage_work") == [] and desk.todos("li", "stage_work") == [deal]


def test_a_second_transfer_settles_the_first_assignment(desk):
    deal = desk.deal("zhang")
    desk.transfer("wang", "opportunity", [deal], "li")
    desk.transfer("wang", "opportunity", [deal], "zhao")
    assert desk.todos("li", "assigned") == [] and desk.todos("zhao", "assigned") == [deal]


def test_a_refused_transfer_notifies_no_one(desk):
    deal = desk.deal("li")
    with pytest.raises(RecordNotFound):  # zhang sees his own records only
        desk.transfer("zhang", "opportunity", [deal], "zhao")
    desk.session.rollback()
    assert desk.notifications("zhao") == []
    t = sys_todo
    assert desk.session.execute(sa.select(sa.func.count()).select_from(t).where(
        t.c.kind == "assigned")).scalar_one() == 0
