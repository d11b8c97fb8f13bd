"""What a one-record write sends: a warm plain create is a few statements, on SQLite and
PostgreSQL, with its checks and its audit entry kept.

"Plain": an object without lines, roll-ups, auto-numbers or a stage process, given no
lookup values. "Warm": the actor's access is already known to the session (a request
loads it with the user), so only the write itself reaches the database.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied
from metacrm.engine.systables import sys_audit
from metacrm.engine.writing import records

from conftest import ROOT, SAMPLE, SAMPLE_FLOWS

PLAIN = ROOT / "bench" / "plain"  # a plain object: memo
MOST_STATEMENTS = 3


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    """The sample template with its flows, and a plain object of its own."""
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS, PLAIN])
    return bare_engine


@pytest.fixture
def rep(engine: sa.Engine) -> Actor:
    """A user with the built-in employee role: every object, own records only."""
    with Session(engine) as s, s.begin():
        user_id = users.create_user(s, "rep", "rep-password-1")
    with Session(engine) as s:
        return users.load_actor(s, user_id)


def warm_create(session, registry, actor, count_queries, **values) -> tuple[dict, list[str]]:
    """A second create in the session, each in a transaction of its own."""
    with session.begin():
        records.create(session, registry, "memo", {"title": "first"}, actor=actor)
    with count_queries() as counter, session.begin():
        row = records.create(session, registry, "memo", values, actor=actor)
    return row, counter.statements


def audit_entries(session, record_id: int) -> list[dict]:
    return [dict(r._mapping) for r in session.execute(
        sa.select(sys_audit.c.action, sys_audit.c.actor_id, sys_audit.c.changes)
        .where(sys_audit.c.object == "memo", sys_audit.c.record_id == record_id))]


@pytest.mark.parametrize("who", ["admin", "rep"])
def test_a_warm_plain_create_sends_at_most_three_statements(session, registry, admin, rep,
                                                            count_queries, who):
    actor = admin if who == "admin" else rep
    row, statements = warm_create(session, registry, actor, count_queries,
                                  title="Call back", amount="12.50")
    assert len(statements) <= MOST_STATEMENTS, statements
    assert not any(s.lstrip().upper().startswith("SELECT") for s in statements), statements
    assert row["owner"] == actor.user_id and row["priority"] == "normal"


def test_a_plain_create_still_writes_its_audit_entry(session, registry, rep, count_queries):
    row, _ = warm_create(session, registry, rep, count_queries, title="Call back",
                         amount="12.50")
    assert audit_entries(session, row["id"]) == [{
        "action": "create", "actor_id": rep.user_id,
        "changes": {"title": [None, "Call back"], "amount": [None, "12.50"],
                    "priority": [None, "normal"], "owner": [None, rep.user_id],
                    "department": [None, rep.department_id]}}]


def test_a_rolled_back_create_leaves_neither_record_nor_audit_entry(session, registry, rep):
    session.begin()
    row = records.create(session, registry, "memo", {"title": "Gone"}, actor=rep)
    session.rollback()
    assert audit_entries(session, row["id"]) == []
    assert session.execute(sa.select(sa.func.count()).select_from(
        registry.table("memo"))).scalar() == 0


def test_a_create_outside_the_scope_is_refused_without_reading_it_back(
        session, registry, admin, rep, count_queries):
    with session.begin():
        records.create(session, registry, "memo", {"title": "first"}, actor=rep)
    with count_queries() as counter, pytest.raises(PermissionDenied):
        records.create(session, registry, "memo", {"title": "For admin",
                                                   "owner": admin.user_id}, actor=rep)
    session.rollback()
    assert not any("count(" in s for s in counter.statements), counter.statements
    assert session.execute(sa.select(sa.func.count()).select_from(
        registry.table("memo"))).scalar() == 1


def test_a_lookup_value_adds_one_check(session, registry, rep, make_record, count_queries):
    customer = make_record("customer", name="Acme", actor=rep)
    _, statements = warm_create(session, registry, rep, count_queries, title="Visit",
                                customer=customer["id"])
    assert len(statements) <= MOST_STATEMENTS + 1, statements
    assert sum("o_customer" in s for s in statements) == 1
