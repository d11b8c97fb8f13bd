"""Approvals under concurrency, on PostgreSQL: two approvers of an "any" step answering
at the same instant give one decision and one move to the next step, and a record
cannot enter two approvals at once. Each race runs a few times, from threads with
sessions (and connections) of their own that meet at a barrier before the call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.access import roles
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ApprovalConflict
from metacrm.engine.flows import approvals
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_approval, sys_approval_event
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS, require

ROUNDS = 5
RACE = {"approval_flow": "race", "label": {"en": "Race", "zh": "竞争"}, "object": "opportunity",
        "steps": [{"name": "finance", "approvers": {"type": "role", "role": "finance"},
                   "mode": "any"},
                  {"name": "final", "approvers": {"type": "users", "users": ["admin"]}}]}


@pytest.fixture
def backend() -> str:
    require("postgres")
    return "postgres"


@pytest.fixture
def engine(bare_engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    folder = tmp_path / "race_flows"
    folder.mkdir()
    (folder / "race.yaml").write_text(yaml.safe_dump(RACE, allow_unicode=True), "utf-8")
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS, folder])
    return bare_engine


@pytest.fixture
def crew(engine, people) -> dict[str, Actor]:
    """The demo company with a second finance user: zhao and qian both hold the role."""
    with Session(engine) as session, session.begin():
        roles.set_user_roles(session, people["zhao"].user_id, ["sales_rep", "finance"])
    return people


@pytest.fixture
def registry(engine) -> Registry:
    with Session(engine) as session:
        return metastore.load_registry(session)


def new_deal(engine: sa.Engine, registry: Registry, owner: Actor, n: int) -> int:
    with Session(engine) as session, session.begin():
        customer = records.create(session, registry, "customer", {"name": f"客户 {n}"},
                                  actor=owner)
        return records.create(session, registry, "opportunity",
                              {"name": f"商机 {n}", "customer": customer["id"]},
                              actor=owner)["id"]


def race(engine: sa.Engine, *calls: Callable[[Session], Any]) -> list[Any]:
    """Run each call in its own thread, session and connection, all released at once;
    each commits. Returns each call's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[Session], Any]) -> None:
        with Session(engine) as session:
            session.connection()  # the connection is checked out before the start
            try:
                barrier.wait(timeout=10)
                results[i] = call(session)
                session.commit()
            except Exception as exc:  # noqa: BLE001 - the caller judges each outcome
                session.rollback()
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return results


def test_two_any_approvers_approving_at_once_give_one_decision(engine, registry, crew):
    qian, zhao = crew["qian"], crew["zhao"]
    for n in range(ROUNDS):
        record_id = new_deal(engine, registry, crew["zhang"], n)
        with Session(engine) as session, session.begin():
            approval_id = approvals.submit(session, registry, "opportunity", record_id,
                                           "race", actor=crew["zhang"])

        results = race(engine, *(
            lambda s, who=who, aid=approval_id: approvals.approve(s, registry, aid, actor=who)
            for who in (qian, zhao)))

        conflicts = [r for r in results if isinstance(r, ApprovalConflict)]
        assert len(conflicts) == 1 and results.count(None) == 1, results
        with Session(engine) as session:
            tasks = approvals.tasks(session, approval_id)
            first = sorted(t["status"] for t in tasks if t["step"] == 0)
            assert first == ["approved", "cancelled"]
            assert [(t["user_id"], t["status"]) for t in tasks if t["step"] == 1] == \
                [(crew["admin"].user_id, "active")]
            approves = [e for e in approvals.timeline(session, [approval_id])
                        if e["action"] == "approve"]
            assert [(e["step"], e["actor_id"]) for e in approves] == \
                [(0, next(t["user_id"] for t in tasks if t["status"] == "approved"))]
            assert approvals.get(session, approval_id)["step"] == 1


def test_a_record_submitted_twice_at_once_enters_one_approval(engine, registry, crew):
    for n in range(ROUNDS):
        record_id = new_deal(engine, registry, crew["zhang"], n)

        results = race(engine, *(
            lambda s, who=who, rid=record_id: approvals.submit(s, registry, "opportunity", rid,
                                                               "race", actor=who)
            for who in (crew["zhang"], crew["wang"])))

        conflicts = [r for r in results if isinstance(r, ApprovalConflict)]
        started = [r for r in results if isinstance(r, int)]
        assert len(conflicts) == 1 and len(started) == 1, results
        with Session(engine) as session:
            found = session.execute(sa.select(sys_approval.c.id, sys_approval.c.status).where(
                sys_approval.c.object == "opportunity",
                sys_approval.c.record_id == record_id)).all()
            assert [tuple(r) for r in found] == [(started[0], "pending")]
            submits = session.execute(sa.select(sa.func.count()).select_from(
                sys_approval_event).where(sys_approval_event.c.approval_id == started[0],
                                          sys_approval_event.c.action == "submit")).scalar()
            assert submits == 1
            assert len([t for t in approvals.tasks(session, started[0])
                        if t["status"] == "active"]) == 2  # qian and zhao, once each


def test_a_rejection_and_a_withdrawal_at_once_leave_one_outcome(engine, registry, crew):
    for n in range(ROUNDS):
        record_id = new_deal(engine, registry, crew["zhang"], n)
        with Session(engine) as session, session.begin():
            approval_id = approvals.submit(session, registry, "opportunity", record_id,
                                           "race", actor=crew["zhang"])

        results = race(
            engine,
            lambda s, aid=approval_id: approvals.reject(s, registry, aid, actor=crew["qian"]),
            lambda s, aid=approval_id: approvals.withdraw(s, registry, aid,
                                                          actor=crew["zhang"]))

        assert sum(isinstance(r, ApprovalConflict) for r in results) == 1, results
        assert results.count(None) == 1, results
        with Session(engine) as session:
            status = approvals.get(session, approval_id)["status"]
            assert status == ("rejected" if results[0] is None else "withdrawn")
            actions = [e["action"] for e in approvals.timeline(session, [approval_id])]
            assert actions.count("rejected") + actions.count("withdraw") == 1
