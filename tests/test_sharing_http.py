"""Team members, transfer, export and permission-aware pages, over HTTP.

A small company: a manager of 销售部 who sees the department tree, two reps in 华东
under the manager who see their own records, and a finance user who reads everything
but edits nothing and cannot see the customers' phone numbers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from metacrm.engine.access import org, roles, users
from metacrm.engine.access.permissions import ALL_OBJECTS, OPERATIONS
from metacrm.engine.actor import SYSTEM
from metacrm.engine.writing import records

from conftest import ApiClient, Browser, signed_in

PASSWORD = "password-123"
CUSTOMERS = "/api/v1/objects/customer/records"


@dataclass
class Company:
    ids: dict[str, int]
    customers: dict[str, int]  # name → id

    def client(self, app, username: str) -> ApiClient:
        client = app.test_client()
        token = client.post("/api/v1/auth/token", json={"username": username,
                                                        "password": PASSWORD}).get_json()
        return ApiClient(client, token["token"])

    def browser(self, app, username: str) -> Browser:
        browser = signed_in(app, username, PASSWORD)
        browser.post("/language", {"language": "en", "next": "/"})
        return browser


def _role(session: Session, registry, name: str, scope: str, operations, **extra) -> None:
    role = roles.create_role(session, name, {"en": name, "zh": name})
    grants = {(ALL_OBJECTS, op): scope for op in operations}
    grants.update(extra)
    roles.set_grants(session, role, grants, registry)


@pytest.fixture
def company(engine, registry, admin) -> Company:
    with Session(engine) as s, s.begin():
        root = org.root_department_id(s)
        sales = org.create_department(s, "销售部", root)
        east = org.create_department(s, "华东", sales)
        finance = org.create_department(s, "财务部", root)
        _role(s, registry, "manager", "department_tree", OPERATIONS)
        _role(s, registry, "rep", "own", ("read", "create", "edit", "delete", "transfer"))
        _role(s, registry, "finance", "all", ("read", "export"))
        fin = roles.role_id(s, "finance")
        roles.set_field_rules(s, fin, registry.object("customer"), {"phone": "hidden",
                                                                   "level": "read_only"})
        ids = {"wang": users.create_user(s, "wang", PASSWORD, department_id=sales,
                                         roles=["manager"])}
        for name in ("zhang", "li"):
            ids[name] = users.create_user(s, name, PASSWORD, department_id=east,
                                          superior_id=ids["wang"], roles=["rep"])
        ids["qian"] = users.create_user(s, "qian", PASSWORD, department_id=finance,
                                        roles=["finance"])
        customers = {}
        for owner, name in (("zhang", "远航科技"), ("zhang", "星辰集团"), ("li", "蓝海贸易")):
            row = records.create(s, registry, "customer",
                                 {"name": name, "owner": ids[owner], "phone": "13800000000"},
                                 actor=SYSTEM)
            customers[name] = row["id"]
        records.create(s, registry, "contact", {"name": "张三", "customer": customers["远航科技"],
                                                "owner": ids["zhang"]}, actor=SYSTEM)
    return Company(ids, customers)


def names(response) -> set[str]:
    assert response.status_code == 200, response.get_json()
    return {r["name"] for r in response.get_json()["items"]}


def test_each_user_lists_exactly_their_scope(app, company):
    assert names(company.client(app, "zhang").get(CUSTOMERS)) == {"远航科技", "星辰集团"}
    assert names(company.client(app, "li").get(CUSTOMERS)) == {"蓝海贸易"}
    assert names(company.client(app, "wang").get(CUSTOMERS)) == {"远航科技", "星辰集团",
                                                                 "蓝海贸易"}


def test_a_record_outside_the_scope_is_not_found_and_one_not_editable_is_forbidden(
        app, company):
    li = company.client(app, "li")
    assert li.get(f"{CUSTOMERS}/{company.customers['远航科技']}").status_code == 404
    qian = company.client(app, "qian")
    record = qian.get(f"{CUSTOMERS}/{company.customers['远航科技']}").get_json()
    response = qian.patch(f"{CUSTOMERS}/{record['id']}",
                          json={"remark": "x", "version": record["version"]})
    assert response.status_code == 403


def test_hidden_fields_never_appear_in_api_answers(app, company):
    qian = company.client(app, "qian")
    listed = qian.get(CUSTOMERS).get_json()["items"]
    assert listed and all("phone" not in r for r in listed)
    one = qian.get(f"{CUSTOMERS}/{company.customers['远航科技']}").get_json()
    assert "phone" not in one and one["name"] == "远航科技"
    refused = qian.get(CUSTOMERS, query_string={"filter": '[["phone","eq","13800000000"]]'})
    assert refused.status_code == 400
    assert qian.get(CUSTOMERS, query_string={"fields": "phone"}).status_code == 400


def test_hidden_fields_never_appear_in_exports(app, company):
    qian = company.client(app, "qian")
    response = qian.get("/api/v1/objects/customer/export",
                        query_string={"fields": "name,level"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(table) == 4 and "13800000000" not in text
    web = company.browser(app, "qian")
    sheet = web.client.get("/o/customer/export?format=xlsx&columns=name,phone,level")
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert len(rows) == 4 and not any("13800000000" in map(str, r) for r in rows)
    assert "Phone" not in rows[0] and "Name" in rows[0]


def test_export_needs_the_export_permission(app, company):
    assert company.client(app, "zhang").get("/api/v1/objects/customer/export").status_code == 403


def test_pages_offer_only_what_the_user_may_do(app, company):
    qian = company.browser(app, "qian")
    listing = qian.text("/o/customer")
    assert 'id="new-record"' not in listing and 'id="bulk-delete"' not in listing
    assert 'id="export-menu"' in listing and "13800000000" not in listing
    detail = qian.text(f"/o/customer/{company.customers['远航科技']}")
    assert 'id="edit-record"' not in detail and 'id="delete-record"' not in detail
    assert "13800000000" not in detail
    zhang = company.browser(app, "zhang")
    own = zhang.text(f"/o/customer/{company.customers['远航科技']}")
    assert 'id="edit-record"' in own and 'id="transfer-record"' in own


def test_the_server_refuses_what_the_page_does_not_offer(app, company):
    qian = company.browser(app, "qian")
    record_id = company.customers["远航科技"]
    assert qian.get(f"/o/customer/{record_id}/edit").status_code == 403
    assert qian.post(f"/o/customer/{record_id}/delete").status_code == 403
    assert qian.get("/o/customer/new").status_code == 403
    assert company.browser(app, "li").get(f"/o/customer/{record_id}").status_code == 404


def test_a_read_only_field_shows_as_text_in_the_form(app, company, engine, registry):
    with Session(engine) as s, s.begin():
        roles.set_grants(s, roles.role_id(s, "finance"),
                         {(ALL_OBJECTS, "read"): "all", (ALL_OBJECTS, "edit"): "all"}, registry)
    page = company.browser(app, "qian").text(f"/o/customer/{company.customers['远航科技']}/edit")
    assert 'name="level"' not in page and 'id="f-level"' in page
    assert 'name="phone"' not in page


def test_team_members_added_over_the_api_see_the_record(app, company):
    zhang, li = company.client(app, "zhang"), company.client(app, "li")
    record_id = company.customers["远航科技"]
    added = zhang.post(f"{CUSTOMERS}/{record_id}/team",
                       json={"user_id": company.ids["li"], "access": "read"})
    assert added.status_code == 201
    assert [m["access"] for m in added.get_json()["items"]] == ["owner", "read"]
    assert "远航科技" in names(li.get(CUSTOMERS))
    record = li.get(f"{CUSTOMERS}/{record_id}").get_json()
    refused = li.patch(f"{CUSTOMERS}/{record_id}", json={"remark": "x",
                                                        "version": record["version"]})
    assert refused.status_code == 403
    zhang.post(f"{CUSTOMERS}/{record_id}/team", json={"user_id": company.ids["li"],
                                                      "access": "write"})
    allowed = li.patch(f"{CUSTOMERS}/{record_id}", json={"remark": "x",
                                                        "version": record["version"]})
    assert allowed.status_code == 200
    assert li.delete(f"{CUSTOMERS}/{record_id}/team/{company.ids['li']}").status_code == 204
    assert li.get(f"{CUSTOMERS}/{record_id}").status_code == 404


def test_only_managers_change_the_team(app, company):
    li = company.client(app, "li")
    record_id = company.customers["蓝海贸易"]
    zhang_adds = company.client(app, "zhang").post(
        f"{CUSTOMERS}/{record_id}/team", json={"user_id": company.ids["zhang"]})
    assert zhang_adds.status_code == 404  # zhang cannot even see li's customer
    qian_adds = company.client(app, "qian").post(
        f"{CUSTOMERS}/{record_id}/team", json={"user_id": company.ids["zhang"]})
    assert qian_adds.status_code == 403
    bad = li.post(f"{CUSTOMERS}/{record_id}/team", json={"user_id": company.ids["zhang"],
                                                         "access": "admin"})
    assert bad.status_code == 422 and "access" in bad.get_json()["error"]["fields"]


def test_transfer_over_the_api_keeps_the_old_owner_and_moves_related_records(app, company):
    zhang = company.client(app, "zhang")
    record_id = company.customers["远航科技"]
    response = zhang.post("/api/v1/objects/customer/transfer", json={
        "ids": [record_id], "owner": company.ids["li"], "old_owner": "read",
        "cascade": ["contact.customer"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["moved"] == {"customer": [record_id],
                                            "contact": [response.get_json()["moved"]
                                                        ["contact"][0]]}
    li = company.client(app, "li")
    assert "远航科技" in names(li.get(CUSTOMERS))
    assert {r["name"] for r in li.get("/api/v1/objects/contact/records").get_json()["items"]} \
        == {"张三"}
    kept = zhang.get(f"{CUSTOMERS}/{record_id}/team").get_json()["items"]
    assert [(m["user_id"], m["access"]) for m in kept] == [(company.ids["li"], "owner"),
                                                           (company.ids["zhang"], "read")]


def test_transfer_through_the_list_page(app, company):
    web = company.browser(app, "zhang")
    web.text("/o/customer")
    response = web.post("/o/customer/transfer", {
        "ids": [company.customers["远航科技"], company.customers["星辰集团"]],
        "owner": company.ids["li"], "old_owner": "remove", "back": "/o/customer"})
    assert response.status_code == 302
    assert names(company.client(app, "li").get(CUSTOMERS)) == {"远航科技", "星辰集团",
                                                               "蓝海贸易"}
    assert names(company.client(app, "zhang").get(CUSTOMERS)) == set()


def test_transfer_outside_the_scope_is_refused(app, company):
    qian = company.client(app, "qian")
    response = qian.post("/api/v1/objects/customer/transfer", json={
        "ids": [company.customers["远航科技"]], "owner": company.ids["li"]})
    assert response.status_code == 403
    li = company.client(app, "li")
    hidden = li.post("/api/v1/objects/customer/transfer", json={
        "ids": [company.customers["远航科技"]], "owner": company.ids["li"]})
    assert hidden.status_code == 404


def test_me_says_what_the_roles_allow(app, company):
    me = company.client(app, "qian").get("/api/v1/me").get_json()
    assert me["roles"] == ["finance"]
    assert me["objects"]["customer"]["read"] and not me["objects"]["customer"]["edit"]


def test_counts_are_exact_when_team_records_overlap_the_role_scope(app, company):
    zhang = company.client(app, "zhang")
    record_id = company.customers["远航科技"]
    for user in ("wang", "li"):  # wang's scope covers the record already, li's does not
        zhang.post(f"{CUSTOMERS}/{record_id}/team", json={"user_id": company.ids[user]})
    for user, expected in (("wang", 3), ("li", 2)):
        client = company.client(app, user)
        listed = client.get(CUSTOMERS).get_json()
        # One row per page, so the totals come from the count statements, not the page.
        capped = client.get(CUSTOMERS, query_string={"page_size": 1}).get_json()
        exact = client.get(CUSTOMERS, query_string={"page_size": 1, "count": "exact"}).get_json()
        assert (len(listed["items"]), capped["total"], exact["total"]) == (expected,) * 3
