"""The query compiler: filters, search, sort and pages compile to SQL; bad ones are 400s."""

from __future__ import annotations

import datetime as dt
import functools

import pytest

from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import BadQuery
from metacrm.engine.reading import query
from metacrm.engine.reading.operators import OPERATORS, PERIODS, VALUE_KINDS, FilterContext
from metacrm.engine.writing import records
from metacrm.metadata.fieldtypes import FIELD_TYPES, RELATIVE_DATE_OPS

TODAY = dt.date(2026, 6, 17)  # a Wednesday

# The query compiler as a trusted caller sees it: no permission scope.
list_records = functools.partial(query.list_records, actor=SYSTEM)


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
    page = list_records(session, registry, object_name, query.ListParams(**params), ctx=ctx)
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


def test_the_relative_dates_field_types_allow_are_the_catalogues_periods():
    assert RELATIVE_DATE_OPS == tuple(PERIODS)


def test_every_operator_a_field_type_allows_is_in_the_catalogue_with_a_label_and_value_kind():
    allowed = {op for kind in FIELD_TYPES.values() for op in kind.operators}
    assert allowed <= set(OPERATORS)
    assert all(op.label and op.value in VALUE_KINDS for op in OPERATORS.values())


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
    records.create_many(session, registry, "opportunity", [
        {"name": f"D{i:02d}", "customer": customer["id"],
         **({"amount": (i % 4) * 100} if i % 5 else {})} for i in range(23)], actor=admin)
    session.commit()
    for sort in ("-amount", "amount", "amount,-name", "name", "-name"):
        seen, cursor = [], None
        while True:
            page = list_records(session, registry, "opportunity",
                                      query.ListParams(sort=sort, page_size=5, cursor=cursor))
            seen.extend(r["name"] for r in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        offset_pages = [r["name"] for p in range(1, 6) for r in list_records(
            session, registry, "opportunity",
            query.ListParams(sort=sort, page_size=5, page=p)).items]
        assert seen == offset_pages and len(set(seen)) == 23, sort


def test_count_is_capped_by_default_and_exact_on_request(session, registry, deals,
                                                         monkeypatch):
    monkeypatch.setattr(query, "COUNT_CAP", 3)
    capped = list_records(session, registry, "opportunity", query.ListParams(page_size=2))
    assert (capped.total, capped.total_exact) == (3, False)
    exact = list_records(session, registry, "opportunity",
                               query.ListParams(page_size=2, count="exact"))
    assert (exact.total, exact.total_exact) == (5, True)


def test_count_can_be_estimated_or_left_out(session, registry, deals):
    estimated = list_records(session, registry, "opportunity",
                                   query.ListParams(page_size=2, count="estimate"))
    assert estimated.total is not None and estimated.total >= 0
    skipped = list_records(session, registry, "opportunity",
                                 query.ListParams(page_size=2, count="none"))
    assert skipped.total is None


def test_a_short_first_page_counts_itself(session, registry, deals, count_queries):
    with count_queries() as counter:
        page = list_records(session, registry, "opportunity", query.ListParams())
    statements = [s for s in counter.statements if s != "BEGIN"]
    assert (page.total, page.total_exact) == (5, True) and len(statements) == 1


def test_only_the_requested_columns_are_selected(session, registry, deals, count_queries):
    with count_queries() as counter:
        page = list_records(session, registry, "opportunity",
                                  query.ListParams(columns=["name"], sort="name"))
    assert set(page.items[0]) == {"id", "version", "name"}
    assert not any("amount" in s for s in counter.statements)


def test_lookup_titles_come_from_one_join(session, registry, deals, count_queries):
    with count_queries() as counter:
        page = list_records(session, registry, "opportunity",
                                  query.ListParams(columns=["name", "customer"], sort="id",
                                                   lookup_titles=True))
    assert page.items[0]["customer__title"] == "Acme 100%_off"
    assert len([s for s in counter.statements if s != "BEGIN"]) == 1


def test_recycle_bin_lists_deleted_records(session, registry, deals, admin):
    records.delete(session, registry, "opportunity", deals["Beta"], actor=admin)
    session.commit()
    assert names(session, registry, deleted=True) == ["Beta"]
    assert "Beta" not in names(session, registry)


@pytest.mark.parametrize("params, message", [
    ({"filter": [["nope", "eq", 1]]}, "filter: 'nope' is not a field of opportunity"),
    ({"filter": [["amount", "like", 1]]}, "operator 'like' is not allowed for a currency field"),
    ({"filter": [["amount", "gt", "1; drop table o_opportunity"]]}, "value must be a number"),
    ({"filter": [["stage", "in", "won"]]}, "needs a list of 1 to 500 values"),
    ({"filter": [["amount", "between", [1]]]}, "between needs [low, high]"),
    ({"filter": [["close_date", "last_n_days", 0]]}, "needs a number of days"),
    ({"filter": {"xor": []}}, 'a group is {"and": [...]} or {"or": [...]}'),
    ({"filter": "amount > 5"}, "expected [field, op, value]"),
    ({"filter": [["products", "contains", "robots"]]}, "'robots' is not an option"),
    ({"sort": "amount desc"}, "sort: 'amount desc' is not a field of opportunity"),
    ({"sort": "-remark"}, "sort: a textarea field cannot be sorted"),
    ({"sort": "name; drop table x"}, "is not a field"),
    ({"page_size": 1000}, "page_size must be from 1 to 200"),
    ({"page": 0}, "page must be from 1"),
    ({"cursor": "garbage!"}, "cursor: not a cursor of this list"),
    ({"count": "all"}, "count must be one of"),
    ({"columns": ["secret"]}, "columns: 'secret' is not a field"),
    ({"q": "x" * 101}, "keyword search takes up to 100 characters"),
])
def test_bad_queries_are_refused_with_a_clear_message(session, registry, deals, params, message):
    with pytest.raises(BadQuery) as caught:
        list_records(session, registry, "opportunity", query.ListParams(**params))
    assert message in str(caught.value)


def test_sql_looking_text_is_just_a_value(session, registry, deals):
    assert names(session, registry, filter=[["name", "eq", "x' OR '1'='1"]]) == []
    assert names(session, registry, q="'; DROP TABLE o_opportunity; --") == []
    assert len(names(session, registry)) == 5
