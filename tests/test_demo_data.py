"""`metacrm demo` on the sample template: data a Chinese sales team finds plausible, and
that obeys the template's own rules (it is written by the records service and the stage
and approval engines like everything else)."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine import demo, instance
from metacrm.engine.access import permissions, users
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_approval, sys_approval_task, sys_stage_history, sys_user

from conftest import SAMPLE, SAMPLE_FLOWS, fresh_database, signed_in

PERSON = re.compile(r"[\u4e00-\u9fff]{2,3}")
COMPANY_WORDS = ("公司", "集团")


@dataclass
class Demo:
    url: str
    engine: sa.Engine
    registry: Registry
    created: dict[str, int]
    today: dt.date

    def rows(self, object_name: str) -> list[dict]:
        table = self.registry.table(self.registry.object(object_name))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def run_demo(url: str, seed: int = 42) -> Demo:
    engine = make_engine(url)
    instance.install(engine, [SAMPLE, SAMPLE_FLOWS])
    with Session(engine) as s, s.begin():
        admin = users.load_actor(s, users.create_user(s, "admin", "admin-password",
                                                      is_admin=True))
        owners = [admin.user_id, *demo.populate_org(s)]
        registry = metastore.load_registry(s)
        created = demo.populate(s, registry, admin, per_object=60, seed=seed, owners=owners)
        created["approvals"] = demo.populate_approvals(s, registry)
    return Demo(url, engine, registry, created, dt.date.today())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def made(request, tmp_path_factory) -> Iterator[Demo]:
    from conftest import require

    if request.param == "postgres":
        require("postgres")
    with fresh_database(request.param, tmp_path_factory.mktemp("demo")) as url:
        found = run_demo(url)
        try:
            yield found
        finally:
            found.engine.dispose()


def test_contacts_are_people_with_job_titles(made):
    contacts = made.rows("contact")
    assert contacts
    for c in contacts:
        assert PERSON.fullmatch(c["name"]), c["name"]
        assert c["title"] is None or not PERSON.fullmatch(c["title"]) or \
            c["title"].endswith(("经理", "总监", "主任", "专员", "助理")), c["title"]


def test_customers_are_companies(made):
    for c in made.rows("customer"):
        assert c["name"].endswith(COMPANY_WORDS) or "分公司" in c["name"], c["name"]


def test_products_and_opportunities_are_not_named_like_companies(made):
    for object_name in ("product", "opportunity", "quote", "contract"):
        for row in made.rows(object_name):
            assert not any(w in row["name"] for w in COMPANY_WORDS), (object_name, row["name"])


def test_addresses_hold_a_road_and_a_number_not_a_name(made):
    for c in made.rows("customer"):
        assert c["address"] is None or re.search(r"(路|大道)\d+号", c["address"]), c["address"]


def test_contacts_of_a_record_belong_to_its_customer(made):
    customer_of = {c["id"]: c["customer"] for c in made.rows("contact")}
    for object_name in ("opportunity", "quote", "contract"):
        for row in made.rows(object_name):
            if row["contact"] is not None:
                assert customer_of[row["contact"]] == row["customer"], object_name


def test_payments_never_exceed_their_contract(made):
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for p in made.rows("payment"):
        assert p["amount"] > 0
        paid[p["contract"]] += p["amount"]
    contracts = {c["id"]: c for c in made.rows("contract")}
    assert paid
    for contract_id, total in paid.items():
        assert total <= contracts[contract_id]["amount"]
        assert contracts[contract_id]["status"] in ("active", "finished")


def test_received_sums_are_the_approved_payments(made):
    approved: dict[int, Decimal] = defaultdict(Decimal)
    for p in made.rows("payment"):
        if p["status"] == "approved":
            approved[p["contract"]] += p["amount"]
    for c in made.rows("contract"):
        assert (c["received_amount"] or 0) == approved.get(c["id"], 0)
        assert c["outstanding_amount"] == c["amount"] - (c["received_amount"] or 0)
        assert c["outstanding_amount"] >= 0


def test_quote_totals_are_the_sum_of_their_lines(made):
    lines: dict[int, Decimal] = defaultdict(Decimal)
    for line in made.rows("quote_line"):
        lines[line["quote"]] += line["amount"]
        assert 0 < line["quantity"] <= 20 and 0 <= line["discount"] <= 15
    for q in made.rows("quote"):
        assert (q["total"] or 0) == lines.get(q["id"], 0)


def test_amounts_and_counts_are_in_range(made):
    for c in made.rows("customer"):
        assert c["employees"] is None or c["employees"] >= 0
        assert c["annual_revenue"] is None or c["annual_revenue"] >= 0
    for o in made.rows("opportunity"):
        assert o["amount"] is None or 0 <= o["amount"] < 10_000_000
        assert 0 <= o["win_rate"] <= 100


def test_stages_were_reached_by_moves_through_the_stage_engine(made):
    with made.engine.connect() as conn:
        entered = {(r.record_id, r.stage) for r in conn.execute(
            sa.select(sys_stage_history.c.record_id, sys_stage_history.c.stage)
            .where(sys_stage_history.c.object == "opportunity"))}
    opportunities = made.rows("opportunity")
    assert {o["stage"] for o in opportunities} >= {"qualify", "won", "lost"}
    for o in opportunities:
        assert (o["id"], o["stage"]) in entered
        if o["stage"] == "won":
            assert (o["id"], "negotiation") in entered and o["win_rate"] == 100
        if o["stage"] == "lost":
            assert o["lost_reason"] is not None
        else:
            assert o["lost_reason"] is None


def test_no_record_is_both_in_a_final_stage_and_pending_approval(made):
    with made.engine.connect() as conn:
        pending = {(r.object, r.record_id) for r in conn.execute(
            sa.select(sys_approval.c.object, sys_approval.c.record_id)
            .where(sys_approval.c.status == "pending"))}
    assert made.created["approvals"] > 0
    for o in made.rows("opportunity"):
        if o["stage"] in ("won", "lost"):
            assert ("opportunity", o["id"]) not in pending


def test_approval_outcomes_come_from_decided_approvals(made):
    with made.engine.connect() as conn:
        approved = {r.record_id for r in conn.execute(
            sa.select(sys_approval.c.record_id).where(
                sys_approval.c.flow == "large_opportunity", sys_approval.c.status == "approved"))}
    for o in made.rows("opportunity"):
        if o["approval_status"] == "approved":
            assert o["id"] in approved


def test_the_demo_is_the_same_every_time(tmp_path: Path):
    names = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        found = run_demo(f"sqlite:///{tmp_path / run / 'demo.db'}")
        names.append([(o["name"], o["amount"], o["stage"]) for o in found.rows("opportunity")])
        found.engine.dispose()
    assert names[0] == names[1]


def test_products_carry_the_category_and_unit_of_their_catalogue_entry(made):
    from metacrm.engine.demo_values import PRODUCTS

    for p in made.rows("product"):
        entry = next(e for e in PRODUCTS if p["name"].startswith(e.name))
        assert (p["category"], p["unit"]) == (entry.category, entry.unit), p["name"]
        assert entry.low <= p["price"] <= entry.high, p["name"]


def test_contacts_gender_follows_the_given_name(made):
    from metacrm.engine.demo_values import GIVEN_FEMALE, GIVEN_MALE

    for c in made.rows("contact"):
        given = c["name"][1:]
        assert c["gender"] == ("female" if given in GIVEN_FEMALE else "male"), c["name"]
        assert given in GIVEN_FEMALE or given in GIVEN_MALE
        assert c["birthday"] is None or 22 <= (made.today - c["birthday"]).days // 365 <= 60


def test_opportunity_stages_form_a_funnel(made):
    counts: dict[str, int] = defaultdict(int)
    for o in made.rows("opportunity"):
        counts[o["stage"]] += 1
    open_stages = [counts[s] for s in ("qualify", "needs", "proposal", "negotiation")]
    assert open_stages == sorted(open_stages, reverse=True) and open_stages[-1] > 0, counts
    assert open_stages[0] < sum(counts.values()) / 2
    assert counts["won"] > 0 and counts["lost"] > 0


def test_every_quote_has_one_to_four_lines_of_different_products(made):
    lines: dict[int, int] = defaultdict(int)
    products: dict[int, set[int]] = defaultdict(set)
    for line in made.rows("quote_line"):
        lines[line["quote"]] += 1
        assert line["product"] not in products[line["quote"]]
        products[line["quote"]].add(line["product"])
    for q in made.rows("quote"):
        assert 1 <= lines[q["id"]] <= 4 and q["line_count"] == lines[q["id"]]


def test_the_sales_manager_has_approvals_waiting(made):
    with made.engine.connect() as conn:
        waiting = conn.execute(
            sa.select(sa.func.count()).select_from(sys_approval_task.join(
                sys_user, sys_user.c.id == sys_approval_task.c.user_id))
            .where(sys_user.c.username == "wang", sys_approval_task.c.status == "active")
        ).scalar()
    assert 5 <= waiting <= 8


def test_every_lookup_points_at_a_record_its_owner_may_read(made):
    """A contact's customer, a deal's customer and contact, a payment's contract…: the
    record's owner (a line's: its master's) may read what it points at."""
    registry = made.registry
    with Session(made.engine) as s:
        actors = {u: users.load_actor(s, u) for u in s.execute(sa.select(sys_user.c.id))
                  .scalars()}
        readable: dict[tuple[int, str], set[int]] = {}

        def may_read(user_id: int, object_name: str) -> set[int]:
            if (user_id, object_name) not in readable:
                obj = registry.object(object_name)
                table = registry.table(obj)
                readable[user_id, object_name] = set(s.execute(sa.select(table.c.id).where(
                    permissions.condition(s, actors[user_id], obj, table, "read"))).scalars())
            return readable[user_id, object_name]

        checked = 0
        for obj in registry.active_objects:
            master = obj.master_field
            owners = {r["id"]: r["owner"] for r in made.rows(master.target_object)} \
                if master else None
            lookups = [f for f in obj.active_fields if f.type == "lookup" and not f.master
                       and "owner" in registry.object(f.target_object).features]
            for row in made.rows(obj.name) if lookups else []:
                owner = owners[row[master.name]] if master else row["owner"]
                for f in lookups:
                    if row[f.name] is not None:
                        assert row[f.name] in may_read(owner, f.target_object), \
                            (obj.name, row["id"], f.name, row[f.name], owner)
                        checked += 1
    assert checked > 500


def test_a_rep_sees_the_names_of_what_his_deals_point_at(made, tmp_path):
    from metacrm.ui.app import create_app

    app = create_app(Settings(database_url=made.url, secret_key="test-secret",
                              metadata_poll_seconds=0, instance_dir=tmp_path / "instance",
                              testing=True), engine=made.engine)
    page = signed_in(app, "zhang", demo.DEMO_PASSWORD).text("/o/opportunity")
    assert "/o/opportunity/" in page and "（记录" not in page
