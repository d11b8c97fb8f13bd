"""Automations (``automations:`` on an object) at run time, on SQLite and PostgreSQL: they
run in the write's transaction, are audited under their name, notify in the reader's
language, and a chain that loops is stopped with the whole write rolled back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session
from test_approvals_engine import Flows
from test_stages_engine import Deals

from metacrm.engine import instance, write_hooks
from metacrm.engine.actor import Actor
from metacrm.engine.errors import AutomationLoop, PermissionDenied
from metacrm.engine.flows import notifications
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry, build_registry
from metacrm.engine.writing import hooks, records
from metacrm.engine.writing.hooks import Hook

from conftest import SAMPLE, SAMPLE_FLOWS, signed_in

WON = "opportunity.won_closes_customer"  # the sample template's automation
BIG_DEAL = {  # customer level A once an opportunity of it grows past 100000
    "name": "big_deal_makes_key_account", "label": {"en": "Big deal", "zh": "大单客户"},
    "trigger": {"event": "field_changed", "fields": ["amount"]},
    "condition": "amount > 100000",
    "actions": [{"set": {"lookup": "customer", "fields": {"level": "A"}}}]}
APPROVED = {  # an approved large opportunity leaves its name in the customer's remarks
    "name": "approved_note", "label": {"en": "Approved note", "zh": "审批备注"},
    "trigger": {"event": "approval_approved", "flows": ["large_opportunity"]},
    "actions": [{"set": {"lookup": "customer", "fields": {"remark": "=name"}}}]}


def with_automations(folder: Path, object_name: str, automations: list[dict]) -> None:
    path = folder / f"{object_name}.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["automations"] = [*raw.get("automations", []), *automations]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture
def engine(bare_engine, tmp_path: Path):
    """The sample template and flows, the opportunity with two more automations."""
    folder = tmp_path / "template"
    shutil.copytree(SAMPLE, folder)
    with_automations(folder, "opportunity", [BIG_DEAL, APPROVED])
    instance.install(bare_engine, [folder, SAMPLE_FLOWS])
    return bare_engine


@pytest.fixture
def zhang(people) -> Actor:
    return people["zhang"]


@pytest.fixture
def deals(session, registry, zhang) -> Deals:
    return Deals(session, registry, zhang)


def negotiating(deals: Deals) -> dict:
    """An opportunity one move from won: in negotiation, its stage work done."""
    deal = deals.make(complete=True, stage="negotiation")
    deals.tick(deal["id"], "terms_agreed")
    return deal


def stored(engine, registry: Registry, object_name: str, record_id: int) -> dict:
    """The record as committed, read on a connection of its own."""
    table = registry.table(object_name)
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(table).where(table.c.id == record_id)
                                 ).mappings().one())


# -- the sample: a won opportunity closes its customer ---------------------------------------
def test_a_won_opportunity_closes_its_customer_in_the_same_commit(engine, registry, deals,
                                                                   zhang):
    deal = negotiating(deals)
    assert stored(engine, registry, "customer", deal["customer"])["deal_status"] == "open"
    deals.move(deal["id"], "won", actor=zhang)
    assert stored(engine, registry, "opportunity", deal["id"])["stage"] == "won"
    assert stored(engine, registry, "customer", deal["customer"])["deal_status"] == "closed"


def test_a_failure_later_in_the_write_rolls_back_both_records(engine, registry, session, deals,
                                                               zhang):
    deal = negotiating(deals)

    def refuse(ctx):
        if ctx.changes.get("stage") == "won":
            raise PermissionDenied("no")

    hooks.install((*write_hooks.CATALOGUE,
                   Hook("test.refuse", "after_write", frozenset({"update"}), refuse)))
    try:
        with pytest.raises(PermissionDenied):
            deals.move(deal["id"], "won", actor=zhang)
        session.rollback()
    finally:
        write_hooks.install()
    assert stored(engine, registry, "opportunity", deal["id"])["stage"] == "negotiation"
    assert stored(engine, registry, "customer", deal["customer"])["deal_status"] == "open"


def test_the_customers_history_names_the_automation(session, registry, deals, zhang):
    deal = negotiating(deals)
    deals.move(deal["id"], "won", actor=zhang)
    entries = records.history(session, registry, "customer", deal["customer"], actor=zhang)
    change = next(e for e in entries if "deal_status" in e["changes"])
    assert change["via"] == f"automation:{WON}"
    assert change["changes"]["deal_status"] == ["open", "closed"]


def test_the_customers_owner_is_notified_in_his_language(app, engine, registry, session,
                                                          deals, people):
    deal = negotiating(deals)
    deals.move(deal["id"], "won", actor=people["admin"])  # zhang owns the customer
    found = [n for n in notifications.listing(session, people["zhang"].user_id)
             if n["kind"] == "automation"]
    assert [n["params"]["automation"] for n in found] == [WON]
    name = deal["name"]
    customer = stored(engine, registry, "customer", deal["customer"])["name"]
    zhang = signed_in(app, "zhang", "demo-password")  # reads Chinese
    assert f"商机「{name}」已赢单，客户「{customer}」已标记为已成交" in zhang.text("/notifications")
    zhang.post("/language", {"language": "en", "next": "/"})
    assert f"Opportunity {name} was won: customer {customer} is now closed" in \
        zhang.text("/notifications")


def test_the_history_page_says_which_automation_changed_the_record(app, deals, zhang):
    deal = negotiating(deals)
    deals.move(deal["id"], "won", actor=zhang)
    page = signed_in(app, "zhang", "demo-password")
    page.post("/language", {"language": "en", "next": "/"})
    html = page.text(f"/o/customer/{deal['customer']}")
    assert "via automation A won opportunity closes its customer&#39;s deal" in html


# -- conditions and triggers ------------------------------------------------------------------
def test_a_false_condition_runs_nothing(engine, registry, session, deals, zhang):
    deal = deals.make(complete=True)
    records.update_record(session, registry, "opportunity", deal["id"], {"amount": 5000},
                          actor=zhang)
    session.commit()
    assert stored(engine, registry, "customer", deal["customer"])["level"] == "B"
    records.update_record(session, registry, "opportunity", deal["id"], {"amount": 200000},
                          actor=zhang)
    session.commit()
    assert stored(engine, registry, "customer", deal["customer"])["level"] == "A"


def test_field_changed_fires_only_when_the_field_changed(engine, registry, session, deals,
                                                         zhang):
    deal = deals.make(complete=True, amount=300000)  # created: not a change of amount
    records.update_record(session, registry, "opportunity", deal["id"],
                          {"amount": 300000, "remark": "still big"}, actor=zhang)
    session.commit()
    assert stored(engine, registry, "customer", deal["customer"])["level"] == "B"


def test_an_approved_approval_triggers_its_automation(engine, registry, session, deals, people):
    flows = Flows(session, registry, people)
    deal = deals.make(complete=True, amount=800000)
    approval = flows.submit(deal["id"], "large_opportunity")
    assert stored(engine, registry, "customer", deal["customer"])["remark"] is None
    flows.act("approve", approval, "wang")
    flows.act("approve", approval, "qian")
    assert flows.get(approval)["status"] == "approved"
    assert stored(engine, registry, "customer", deal["customer"])["remark"] == deal["name"]


def test_a_rejected_approval_does_not_trigger_an_approved_automation(engine, registry, session,
                                                                     deals, people):
    flows = Flows(session, registry, people)
    deal = deals.make(complete=True, amount=800000)
    approval = flows.submit(deal["id"], "large_opportunity")
    flows.act("reject", approval, "wang", comment="too big")
    assert stored(engine, registry, "customer", deal["customer"])["remark"] is None


# -- loops at run time ------------------------------------------------------------------------
BUMP = {"name": "bump", "label": {"en": "Bump", "zh": "递增"},
        "trigger": {"event": "updated"},
        "actions": [{"set": {"fields": {"employees": "=employees + 1"}}}]}


@pytest.fixture
def loop_registry(engine, registry) -> Registry:
    """The registry with a customer automation that triggers itself, as metadata that
    never met ``metacrm validate`` would give (the check refuses it)."""
    with Session(engine) as s:
        found = metastore.current_documents(s)
    docs = [(kind, {**content, "automations": [BUMP]} if (kind, key) == ("object", "customer")
             else content) for (kind, key), content in found.items()]
    return build_registry(registry.version, docs)


def test_a_chain_that_loops_is_stopped_and_nothing_is_saved(engine, session, loop_registry,
                                                            zhang):
    customer = records.create(session, loop_registry, "customer",
                              {"name": "循环客户", "employees": 10}, actor=zhang)
    session.commit()
    with pytest.raises(AutomationLoop) as caught:
        records.update_record(session, loop_registry, "customer", customer["id"],
                              {"remark": "go"}, actor=zhang)
    session.rollback()
    assert "customer.bump" in str(caught.value) and "loop" in str(caught.value)
    after = stored(engine, loop_registry, "customer", customer["id"])
    assert (after["employees"], after["remark"]) == (10, None)
