"""The query compiler: filters, search, sort and pages compile to SQL; bad ones are 400s."""

from __future__ import annotations

import datetime as dt

import pytest

from metacrm.engine import query, records
from metacrm.engine.errors import BadQuery
from metacrm.engine.operators import FilterContext

TODAY = dt.date(2026, 6, 17)  # a Wednesday


@pytest.fixture
def deals(session, registry, admin, make_record):
    acme = make_record("customer", name="Acme 100%_off", industry="it")
    other = make_record("customer", name="Northwind", industry="retail")
    rows = [
        {"name": "Alpha", "amount": 500, "stage": "qualify", "close_date": "2026-06-17",
         "products": ["software"], "customer": acme["id"]},
        {"name": "Beta", "amount": 1500, "stage": "needs", "close_date": "2026-06-01",
         "products": ["hardware", "service"], "customer": acme["id"]},
        {"name": "Gamma", "amount": 2500, "stage": "won", "close_date": "2026-05-20",
         "customer": other["id"]},
        {"name": "Delta", "stage": "lost", "close_date": "2025-12-31", "customer": other["id"]},
        {"name": "Epsilon", "amount": 1500, "stage": "proposal", "customer": other["id"]},
    ]
    created = records.create_many(session, registry, "opportunity", rows, actor=admin)
    session.commit()
    return {r["name"]: r["id"] for r in created}


def names(session, registry, *, object_name="opportunity", **params) -> list[str]:
    ctx = FilterContext(session.get_bind().dialect.name, TODAY, dt.UTC)
    page = query.list_records(session, registry, object_name, query.ListParams(**params), ctx=ctx)
    return [r["name"] for r in page.items]


@pytest.mark.parametrize("condition, expected", [
    (["stage", "eq", "won"], ["Gamma"]),
    (["stage", "ne", "won"], ["Alpha", "Beta", "Delta", "Epsilon"]),
    (["amount", "lt", 1500], ["Alpha"]),
    (["amount", "lte", 1500], ["Alpha", "Beta", "Epsilon"]),
    (["amount", "gt", "1500"], ["Gamma"]),
    (["amount", "gte", 1500], ["Beta", "Gamma", "Epsilon"]),
    (["stage", "in", ["won", "lost"]], ["Gamma", "Delta"]),
    (["stage", "not_in", ["won", "lost"]], ["Alpha", "Beta", "Epsilon"]),
    (["name", "contains", "ELT"], ["Delta"]),
    (["name", "not_contains", "a"], ["Epsilon"]),
    (["name", "starts_with", "Ga"], ["Gamma"]),
    (["amount", "is_null", True], ["Delta"]),
    (["close_date", "is_null", False], ["Alpha", "Beta", "Gamma", "Delta"]),
    (["amount", "between", [1000, 2000]], ["Beta", "Epsilon"]),
    (["close_date", "today"], ["Alpha"]),
    (["close_date", "this_week"], ["Alpha"]),
    (["close_date", "this_month"], ["Alpha", "Beta"]),
    (["close_date", "last_month"], ["Gamma"]),
    (["close_date", "last_n_days", 30], ["Alpha", "Beta", "Gamma"]),
    (["close_date", "last_year"], ["Delta"]),
    (["products", "contains", "service"], ["Beta"]),
    (["products", "contains", ["software", "hardware"]], ["Alpha", "Beta"]),
])
def test_each_operator_selects_the_right_records(session, registry, deals, condition, expected):
    assert names(session, registry, filter=[condition], sort="id") == expected


def test_and_or_groups_nest(session, registry, deals):
    tree = {"or": [["stage", "eq", "won"],
                   {"and": [["amount", "gte", 1500], ["stage", "eq", "proposal"]]}]}
    assert names(session, registry, filter=tree, sort="id") == ["Gamma", "Epsilon"]


def test_filter_on_a_lookup_and_a_system_field(session, registry, deals, admin):
    acme_deals = names(session, registry, filter=[["owner", "eq", admin.user_id],
                                                  ["name", "in", ["Alpha", "Gamma"]]], sort="id")
    assert acme_deals == ["Alpha", "Gamma"]


def test_sort_by_several_keys_with_nulls_in_a_stable_place(session, registry, deals):
    ordered = names(session, registry, sort="-amount,name")
    nulls_first = session.get_bind().dialect.name == "postgresql"  # each database's own order
    expected = ["Gamma", "Beta", "Epsilon", "Alpha"]
    assert ordered == (["Delta"] + expected if nulls_first else expected + ["Delta"])


def test_keyword_search_covers_the_search_fields(session, registry, deals):
    assert names(session, registry, q="amm", sort="id") == ["Gamma"]
    assert names(session, registry, object_name="customer", q="100%_") == ["Acme 100%_off"]
    assert names(session, registry, object_name="customer", q="0%x") == []


def test_cursor_pages_walk_every_record_once(session, registry, admin):
    customer = records.create(session, registry, "customer", {"name": "C"}, actor=admin)
