"""Field access: a role hides fields or makes them read-only, per object.

A hidden field does not exist for the user: not in lists, records, return values,
history, filters, sorts, columns or exports, and writing it is an unknown field. A
read-only field is shown but keeps its value.
"""

from __future__ import annotations

import pytest

from metacrm.engine.errors import BadQuery, ValidationFailed
from metacrm.engine.reading import export, query
from metacrm.engine.writing import records

HIDDEN = ("annual_revenue", "phone", "deal_status")  # deal_status has a default
READ_ONLY = "level"
RULES = {"customer": {**dict.fromkeys(HIDDEN, "hidden"), READ_ONLY: "read_only"}}
CUSTOMER_GRANTS = {("customer", "read"): "all", ("customer", "create"): "own",
                   ("customer", "edit"): "all", ("customer", "export"): "all"}



@pytest.fixture
def secret(crm) -> int:
    """rep_east's customer, with values in the hidden fields (set by the administrator)."""
    rid = crm.org.records["customer"]["rep_east"]
    records.update_record(crm.session, crm.registry, "customer", rid,
                          {"annual_revenue": 1000, "phone": "13800000001", "level": "A",
                           "remark": "seen"}, actor=crm.actor("admin"))
    return rid


@pytest.fixture
def manager(crm):
    """The manager with the role that hides HIDDEN and makes READ_ONLY read-only."""
    return crm.give("manager", crm.role(CUSTOMER_GRANTS, fields=RULES))


def list_page(crm, actor, **params) -> query.Page:
    return query.list_records(crm.session, crm.registry, "customer",
                              query.ListParams(page_size=50, **params), actor=actor)


def update(crm, actor, rid: int, **values) -> dict:
    return records.update_record(crm.session, crm.registry, "customer", rid, values, actor=actor)


# -- hidden -------------------------------------------------------------------------------
def test_a_hidden_field_is_not_in_the_list(crm, secret, manager):
    page = list_page(crm, manager)
    assert not set(HIDDEN) & set(page.columns)
    assert all(not set(HIDDEN) & set(item) for item in page.items)
    assert READ_ONLY in page.columns


def test_a_hidden_field_is_not_in_the_record(crm, secret, manager):
    row = records.get(crm.session, crm.registry, "customer", secret, actor=manager)
    assert not set(HIDDEN) & set(row) and row["remark"] == "seen"


def test_a_hidden_field_is_not_in_what_create_and_update_return(crm, manager):
    created = records.create(crm.session, crm.registry, "customer", {"name": "新客户"},
                             actor=manager)
    updated = update(crm, manager, created["id"], remark="changed")
    assert not set(HIDDEN) & (set(created) | set(updated))
    stored = records.get(crm.session, crm.registry, "customer", created["id"],
                         actor=crm.actor("admin"))
    assert stored["deal_status"] == "open"  # the default still applies


def test_a_hidden_field_is_not_in_the_history(crm, secret, manager):
    entries = records.history(crm.session, crm.registry, "customer", secret, actor=manager)
    assert entries[0]["changes"] == {"remark": [None, "seen"], "level": ["B", "A"]}
    assert all(not set(HIDDEN) & set(e["changes"]) for e in entries)


QUERIES = {
    "filter": lambda name: {"filter": [[name, "gt", 10]]},
    "sort": lambda name: {"sort": f"-{name}"},
    "columns": lambda name: {"columns": ["name", name]},
}


@pytest.mark.parametrize("purpose", QUERIES)
def test_a_hidden_field_cannot_be_queried_as_if_it_did_not_exist(crm, manager, purpose):
    with pytest.raises(BadQuery) as hidden:
        list_page(crm, manager, **QUERIES[purpose]("annual_revenue"))
    with pytest.raises(BadQuery) as missing:
        list_page(crm, manager, **QUERIES[purpose]("no_such_field"))
    assert hidden.value.field == "annual_revenue"
    assert str(hidden.value) == str(missing.value).replace("no_such_field", "annual_revenue")


def test_keyword_search_does_not_look_into_a_hidden_field(crm, secret, manager):
    assert [r["id"] for r in list_page(crm, crm.actor("admin"), q="13800000001").items] == \
        [secret]
    assert list_page(crm, manager, q="13800000001").items == []


@pytest.mark.parametrize("how", ["create", "update"])
def test_writing_a_hidden_field_fails_on_that_field(crm, secret, manager, how):
    with pytest.raises(ValidationFailed) as failed:
        if how == "create":
            records.create(crm.session, crm.registry, "customer",
                           {"name": "新客户", "annual_revenue": 5}, actor=manager)
        else:
            update(crm, manager, secret, annual_revenue=5, remark="x")
    assert failed.value.fields == {"annual_revenue": "is not a field of this object"}


def test_an_export_leaves_a_hidden_field_out(crm, secret, manager):
    header = next(export.rows(crm.session, crm.registry, crm.registry.object("customer"),
                              query.ListParams(), actor=manager, language="en"))
    labels = {crm.registry.object("customer").queryable[n].label.get("en") for n in HIDDEN}
    assert "Name" in header and not labels & set(header)


# -- read-only ----------------------------------------------------------------------------
def test_a_read_only_field_is_shown(crm, secret, manager):
    assert records.get(crm.session, crm.registry, "customer", secret,
                       actor=manager)[READ_ONLY] == "A"


def test_changing_a_read_only_field_fails(crm, secret, manager):
    with pytest.raises(ValidationFailed) as failed:
        update(crm, manager, secret, level="C", remark="x")
    assert failed.value.fields == {READ_ONLY: "is read-only"}


def test_a_read_only_field_sent_unchanged_passes(crm, secret, manager):
    assert update(crm, manager, secret, level="A", remark="kept")["remark"] == "kept"


def test_a_read_only_field_cannot_be_set_on_create(crm, manager):
    with pytest.raises(ValidationFailed) as failed:
        records.create(crm.session, crm.registry, "customer", {"name": "新客户", "level": "A"},
                       actor=manager)
    assert failed.value.fields == {READ_ONLY: "is read-only"}


def test_a_read_only_field_may_be_sent_with_its_default(crm, manager):
    row = records.create(crm.session, crm.registry, "customer", {"name": "新客户", "level": "B"},
                         actor=manager)
    assert row["level"] == "B"


# -- several roles ------------------------------------------------------------------------
def test_the_most_permissive_role_decides(crm, secret):
    reader = crm.role({("customer", "read"): "all", ("customer", "edit"): "all"},
                      fields={"customer": {"annual_revenue": "read_only", "phone": "hidden"}})
    actor = crm.give("manager", crm.role(CUSTOMER_GRANTS, fields=RULES), reader)
    row = records.get(crm.session, crm.registry, "customer", secret, actor=actor)
    assert ("annual_revenue" in row, "phone" in row, "deal_status" in row) == \
        (True, False, True)  # read-only beats hidden; no rule (editable) beats hidden
    assert update(crm, actor, secret, deal_status="closed")["deal_status"] == "closed"
    with pytest.raises(ValidationFailed):
        update(crm, actor, secret, annual_revenue=1)


def test_a_role_that_cannot_read_the_object_does_not_widen_its_fields(crm, secret):
    other = crm.role({("contact", "read"): "all"})  # no rule on customer fields, no read
    actor = crm.give("manager", crm.role(CUSTOMER_GRANTS, fields=RULES), other)
    row = records.get(crm.session, crm.registry, "customer", secret, actor=actor)
    assert not set(HIDDEN) & set(row)


def test_a_super_administrator_is_not_limited_by_field_rules(crm, secret):
    admin = crm.give("admin", "super_admin", crm.role(CUSTOMER_GRANTS, fields=RULES))
    row = records.get(crm.session, crm.registry, "customer", secret, actor=admin)
    assert set(HIDDEN) <= set(row)
    assert update(crm, admin, secret, level="C", annual_revenue=2)["level"] == "C"


# -- lookups and titles -------------------------------------------------------------------
def test_a_hidden_lookup_leaves_no_title_behind(crm):
    actor = crm.give("manager", crm.role({("opportunity", "read"): "all"},
                                         fields={"opportunity": {"contact": "hidden"}}))
    page = query.list_records(crm.session, crm.registry, "opportunity",
                              query.ListParams(page_size=50, lookup_titles=True), actor=actor)
    assert page.items and all("contact" not in i and "contact__title" not in i
                              for i in page.items)
    assert all("owner__title" in i for i in page.items)


def test_a_required_field_without_a_default_cannot_be_hidden(crm):
    with pytest.raises(ValidationFailed) as failed:
        crm.role({("contact", "read"): "all"}, fields={"contact": {"customer": "hidden"}})
    assert set(failed.value.fields) == {"customer"}


def test_the_title_field_cannot_be_hidden(crm):
    with pytest.raises(ValidationFailed) as failed:
        crm.role({("customer", "read"): "all"}, fields={"customer": {"name": "hidden"}})
    assert set(failed.value.fields) == {"name"}
