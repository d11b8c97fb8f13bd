"""Line items, formulas, roll-ups, validation rules, default expressions, lookup filters,
dependent picklists and regions, through the records service (SQLite and PostgreSQL).

The sample template's quote (lines, total), contract (received amount from approved
payments) and customer (region, sub-industry) are the specimens.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from metacrm.engine.errors import ValidationFailed
from metacrm.engine.reading import query
from metacrm.engine.writing import lines, lookup_filters, records, rollups


@pytest.fixture
def shop(make_record):
    """A customer with a contact, another customer, and two products."""
    acme = make_record("customer", name="ACME", level="A")
    other = make_record("customer", name="Globex", level="C")
    return {
        "acme": acme, "other": other,
        "alice": make_record("contact", name="Alice", customer=acme["id"]),
        "bob": make_record("contact", name="Bob", customer=other["id"]),
        "crm": make_record("product", name="CRM licence", price="1000"),
        "server": make_record("product", name="Server", price="250.50"),
    }


@pytest.fixture
def quote_of(session, registry, admin, shop):
    def make(*line_values, **values):
        row = records.create(session, registry, "quote",
                             {"name": "Q", "customer": shop["acme"]["id"], **values,
                              "lines": list(line_values)}, actor=admin)
        session.commit()
        return row
    return make


def quote_lines(session, registry, admin, quote_id):
    return lines.read(session, registry, registry.object("quote"), [quote_id],
                      actor=admin)["lines"][quote_id]


def count(session, registry, name):
    table = registry.table(name)
    return session.execute(select(func.count()).select_from(table)).scalar()


# -- line items and roll-ups ----------------------------------------------------------------
def test_a_quote_and_its_lines_are_saved_in_one_call(session, registry, admin, shop, quote_of):
    quote = quote_of({"product": shop["crm"]["id"], "quantity": "2", "discount": "10"},
                     {"product": shop["server"]["id"], "quantity": 3, "unit_price": "200"})
    found = quote_lines(session, registry, admin, quote["id"])
    assert [line["amount"] for line in found] == [Decimal("1800.00"), Decimal("600.00")]
    assert quote["line_count"] == 2
    assert quote["total"] == Decimal("2400.00")
    assert quote["total_with_tax"] == Decimal("2712.00")


def test_a_line_price_defaults_to_its_products_price(session, registry, admin, shop, quote_of):
    quote = quote_of({"product": shop["server"]["id"], "quantity": 1})
    line, = quote_lines(session, registry, admin, quote["id"])
    assert line["unit_price"] == Decimal("250.50")
    assert line["product_name"] == "Server"


def test_editing_and_removing_lines_keeps_the_total_right(session, registry, admin, shop,
                                                          quote_of):
    quote = quote_of({"product": shop["crm"]["id"], "quantity": 1},
                     {"product": shop["server"]["id"], "quantity": 2, "unit_price": "100"})
    first, _second = quote_lines(session, registry, admin, quote["id"])
    changed = records.update_record(session, registry, "quote", quote["id"], {"lines": [
        {"id": first["id"], "quantity": 3},
        {"product": shop["server"]["id"], "quantity": 1, "unit_price": "50"}]}, actor=admin)
    session.commit()
    assert changed["total"] == Decimal("3050.00")
    assert changed["line_count"] == 2
    assert changed["version"] == quote["version"] + 1
    assert [line["quantity"] for line in quote_lines(session, registry, admin, quote["id"])] == [
        Decimal("3.00"), Decimal("1.00")]


def test_an_empty_list_of_lines_deletes_them_all(session, registry, admin, shop, quote_of):
    quote = quote_of({"product": shop["crm"]["id"], "quantity": 1})
    emptied = records.update_record(session, registry, "quote", quote["id"], {"lines": []},
                                    actor=admin)
    assert (emptied["total"], emptied["line_count"]) == (Decimal("0.00"), 0)
    assert quote_lines(session, registry, admin, quote["id"]) == []


def test_leaving_out_lines_leaves_them_alone(session, registry, admin, shop, quote_of):
    quote = quote_of({"product": shop["crm"]["id"], "quantity": 1})
    records.update_record(session, registry, "quote", quote["id"], {"name": "Renamed"},
                          actor=admin)
    assert len(quote_lines(session, registry, admin, quote["id"])) == 1


def test_a_bad_line_is_named_and_nothing_is_saved(session, registry, admin, shop):
    before = (count(session, registry, "quote"), count(session, registry, "quote_line"))
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "quote", {
            "name": "Q", "customer": shop["acme"]["id"],
            "lines": [{"product": shop["crm"]["id"], "quantity": 1},
                      {"product": shop["crm"]["id"], "quantity": "0"}]}, actor=admin)
    session.rollback()
    assert refused.value.fields == {"lines[1].quantity": "The quantity must be more than zero"}
    assert (count(session, registry, "quote"), count(session, registry, "quote_line")) == before


def test_a_line_of_another_quote_cannot_be_edited_through_this_one(session, registry, admin,
                                                                   shop, quote_of):
    mine = quote_of({"product": shop["crm"]["id"], "quantity": 1})
    theirs = quote_of({"product": shop["crm"]["id"], "quantity": 1})
    foreign = quote_lines(session, registry, admin, theirs["id"])[0]
    with pytest.raises(ValidationFailed) as refused:
        records.update_record(session, registry, "quote", mine["id"],
                              {"lines": [{"id": foreign["id"], "quantity": 5}]}, actor=admin)
    assert list(refused.value.fields) == ["lines[0].id"]


def test_deleting_a_quote_takes_its_lines_and_restoring_brings_them_back(
        session, registry, admin, shop, quote_of):
    quote = quote_of({"product": shop["crm"]["id"], "quantity": 1},
                     {"product": shop["server"]["id"], "quantity": 1})
    records.delete(session, registry, "quote", quote["id"], actor=admin)
    assert quote_lines(session, registry, admin, quote["id"]) == []
    restored = records.restore(session, registry, "quote", quote["id"], actor=admin)
    assert len(quote_lines(session, registry, admin, quote["id"])) == 2
    assert restored["total"] == quote["total"]


def test_a_rollup_counts_only_the_children_its_filter_lets_through(session, registry, admin,
                                                                   make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="5000")
    make_record("payment", contract=contract["id"], amount="1200", status="approved")
    make_record("payment", contract=contract["id"], amount="300", status="pending")
    found = records.get(session, registry, "contract", contract["id"], actor=admin)
    assert found["received_amount"] == Decimal("1200.00")
    assert found["outstanding_amount"] == Decimal("3800.00")
    assert found["last_payment_on"] == dt.date.today()


def test_a_rollup_follows_a_child_moved_to_another_parent(session, registry, admin,
                                                          make_record, shop):
    first = make_record("contract", name="K1", customer=shop["acme"]["id"], amount="5000")
    second = make_record("contract", name="K2", customer=shop["acme"]["id"], amount="100")
    payment = make_record("payment", contract=first["id"], amount="80", status="approved")
    records.update_record(session, registry, "payment", payment["id"],
                          {"contract": second["id"]}, actor=admin)
    received = {c["id"]: records.get(session, registry, "contract", c["id"],
                                     actor=admin)["received_amount"] for c in (first, second)}
    assert received == {first["id"]: Decimal("0.00"), second["id"]: Decimal("80.00")}


def test_a_rollup_follows_a_childs_status_delete_and_restore(session, registry, admin,
                                                             make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="900")
    payment = make_record("payment", contract=contract["id"], amount="100")

    def received():
        return records.get(session, registry, "contract", contract["id"],
                           actor=admin)["received_amount"]

    assert received() == Decimal("0.00")
    records.update_record(session, registry, "payment", payment["id"], {"status": "approved"},
                          actor=admin)
    assert received() == Decimal("100.00")
    records.delete(session, registry, "payment", payment["id"], actor=admin)
    assert received() == Decimal("0.00")
    records.restore(session, registry, "payment", payment["id"], actor=admin)
    assert received() == Decimal("100.00")


def test_recompute_rebuilds_a_rollup_changed_behind_the_engines_back(
        session, registry, admin, make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="900")
    make_record("payment", contract=contract["id"], amount="100", status="approved")
    table = registry.table("contract")
    session.execute(update(table).values(received_amount=None, outstanding_amount=None))
    done = rollups.rebuild(session.connection(), registry, registry.object("contract"),
                           "received_amount")
    found = records.get(session, registry, "contract", contract["id"], actor=admin)
    assert done == 1
    assert (found["received_amount"], found["outstanding_amount"]) == (
        Decimal("100.00"), Decimal("800.00"))


# -- formulas ---------------------------------------------------------------------------------
def test_a_formula_reads_a_lookups_field_and_follows_its_changes(session, registry, admin,
                                                                 shop, quote_of):
    quote = quote_of()
    assert quote["customer_level"] == "A"
    records.update_record(session, registry, "customer", shop["acme"]["id"], {"level": "B"},
                          actor=admin)
    assert records.get(session, registry, "quote", quote["id"],
                       actor=admin)["customer_level"] == "B"


def test_a_formula_is_stored_so_lists_filter_and_sort_on_it(session, registry, admin, shop,
                                                            quote_of):
    quote_of({"product": shop["crm"]["id"], "quantity": 1})
    quote_of({"product": shop["crm"]["id"], "quantity": 3})
    page = query.list_records(session, registry, "quote", query.ListParams(
        filter=[["total_with_tax", "gt", "2000"]],
        sort="-total_with_tax"), actor=admin)
    assert [r["total_with_tax"] for r in page.items] == [Decimal("3390.00")]


def test_a_formula_cannot_be_written(session, registry, admin, shop):
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "quote", {"name": "Q", "customer": shop["acme"]["id"],
                                                    "total_with_tax": "1"}, actor=admin)
    assert "total_with_tax" in refused.value.fields


# -- validation rules and defaults ------------------------------------------------------------
def test_a_broken_validation_rule_is_refused_on_its_field(session, registry, admin, shop):
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "quote", {
            "name": "Q", "customer": shop["acme"]["id"], "quote_date": "2026-03-10",
            "valid_until": "2026-03-01"}, actor=admin)
    assert refused.value.fields == {"valid_until": "The quote cannot expire before its date"}


def test_a_rule_with_a_blank_value_holds(make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="10",
                           start_date="2026-01-01")
    assert contract["id"] and contract.get("end_date") is None


def test_a_rule_is_checked_again_on_update(session, registry, admin, make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="10",
                           start_date="2026-01-01", end_date="2026-12-31")
    with pytest.raises(ValidationFailed) as refused:
        records.update_record(session, registry, "contract", contract["id"],
                              {"end_date": "2025-12-31"}, actor=admin)
    assert list(refused.value.fields) == ["end_date"]


def test_default_expressions_fill_fields_not_given(quote_of):
    quote = quote_of()
    assert quote["quote_date"] == dt.date.today()
    assert quote["valid_until"] == dt.date.today() + dt.timedelta(days=30)


def test_a_given_value_wins_over_a_default_expression(quote_of):
    quote = quote_of(quote_date="2026-01-01", valid_until="2026-01-31")
    assert (quote["quote_date"], quote["valid_until"]) == (dt.date(2026, 1, 1),
                                                           dt.date(2026, 1, 31))


# -- lookup filters ---------------------------------------------------------------------------
def test_a_lookup_filter_refuses_a_contact_of_another_customer(session, registry, admin, shop):
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "contract", {
            "name": "K", "customer": shop["acme"]["id"], "amount": "10",
            "contact": shop["bob"]["id"]}, actor=admin)
    assert list(refused.value.fields) == ["contact"]


def test_a_lookup_filter_is_checked_when_the_record_it_reads_changes(session, registry, admin,
                                                                     make_record, shop):
    contract = make_record("contract", name="K", customer=shop["acme"]["id"], amount="10",
                           contact=shop["alice"]["id"])
    with pytest.raises(ValidationFailed) as refused:
        records.update_record(session, registry, "contract", contract["id"],
                              {"customer": shop["other"]["id"]}, actor=admin)
    assert list(refused.value.fields) == ["contact"]


def test_a_lookup_filter_narrows_the_candidates(session, registry, shop):
    contract = registry.object("contract")
    condition = lookup_filters.candidates_condition(
        registry, contract, "contact", {"customer": str(shop["acme"]["id"])})
    table = registry.table("contact")
    names = session.execute(select(table.c.name).where(condition)).scalars().all()
    assert names == ["Alice"]
    assert lookup_filters.record_names(registry, contract, "contact") == ["customer"]


# -- dependent picklists and regions ----------------------------------------------------------
def test_a_dependent_option_must_fit_the_controlling_value(session, registry, admin):
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "customer", {
            "name": "X", "industry": "finance", "sub_industry": "software"}, actor=admin)
    assert list(refused.value.fields) == ["sub_industry"]


def test_a_dependent_option_under_its_parent_is_accepted(make_record):
    found = make_record("customer", name="X", industry="it", sub_industry="software")
    assert found["sub_industry"] == "software"


def test_a_region_is_a_known_division_code(session, registry, admin, make_record):
    found = make_record("customer", name="X", region="440106")
    assert found["region"] == "440106"
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "customer", {"name": "Y", "region": "999999"},
                       actor=admin)
    assert list(refused.value.fields) == ["region"]


def test_a_region_filter_finds_everything_within_a_province(session, registry, admin,
                                                            make_record):
    make_record("customer", name="Tianhe", region="440106")
    make_record("customer", name="Dongcheng", region="110101")
    page = query.list_records(session, registry, "customer", query.ListParams(
        filter=[["region", "within", "440106"]]), actor=admin)
    assert [r["name"] for r in page.items] == ["Tianhe"]
