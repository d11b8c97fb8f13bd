"""What lookups, roll-ups, formulas and definitions reveal or change outside a user's
scope, over HTTP as the sales rep who could exploit it, on SQLite and PostgreSQL.

The demo company: zhang and li are reps ("own" scope), wang manages them, qian is in
finance (reads everything).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from metacrm.engine.access import roles

from conftest import ApiClient

RECORDS = "/api/v1/objects/{}/records"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


@pytest.fixture
def zhang(client_of):
    return client_of("zhang")


@pytest.fixture
def li(client_of):
    return client_of("li")


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def create(client: ApiClient, object_name: str, expect: int = 201, **values) -> dict:
    return ok(client.post(RECORDS.format(object_name), json=values), expect)


def get(client: ApiClient, object_name: str, record_id: int, **args) -> dict:
    return ok(client.get(f"{RECORDS.format(object_name)}/{record_id}", query_string=args))


@pytest.fixture
def lis_contract(li) -> dict:
    customer = create(li, "customer", name="李娜的客户")
    return create(li, "contract", name="李娜的合同", customer=customer["id"], amount="100000")


@pytest.fixture
def hiding(engine, registry, people):
    """hiding(object, field): the reps' role hides the field from them."""
    def hide(object_name: str, field: str) -> None:
        with Session(engine) as s, s.begin():
            role = roles.role_id(s, "sales_rep")
            roles.set_field_rules(s, role, registry.object(object_name), {field: "hidden"})

    return hide


# -- choosing a lookup target ---------------------------------------------------------------
def test_a_rep_cannot_point_a_payment_at_a_contract_he_may_not_read(zhang, li, lis_contract):
    response = zhang.post(RECORDS.format("payment"), json={
        "contract": lis_contract["id"], "amount": "9999999", "status": "approved"})
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["error"]["fields"]) == {"contract"}
    stored = get(li, "contract", lis_contract["id"])
    assert stored["received_amount"] == "0.00" and stored["version"] == lis_contract["version"]
    assert ok(li.get(RECORDS.format("payment")))["items"] == []


def test_an_unreadable_target_and_a_missing_one_are_refused_alike(zhang, lis_contract):
    def refusal(contract_id: int) -> str:
        response = zhang.post(RECORDS.format("payment"), json={"contract": contract_id,
                                                              "amount": "10"})
        assert response.status_code == 422
        return response.get_json()["error"]["fields"]["contract"]

    hidden, missing = refusal(lis_contract["id"]), refusal(99999)
    assert hidden.replace(str(lis_contract["id"]), "N") == missing.replace("99999", "N")
    assert "您可查看" in hidden  # zhang reads Chinese: "…that you may see"


def test_the_system_still_points_at_any_record(engine, people, registry, lis_contract):
    from metacrm.engine.actor import SYSTEM
    from metacrm.engine.writing import records

    with Session(engine) as s, s.begin():
        row = records.create(s, registry, "payment", {"contract": lis_contract["id"],
                                                      "amount": 5}, actor=SYSTEM)
    assert row["contract"] == lis_contract["id"]


def test_a_record_keeps_a_lookup_its_editor_may_not_read(zhang, li, client_of, lis_contract):
    """wang (the manager) links zhang's payment to li's contract; zhang may still edit
    his payment without touching the contract."""
    own = create(zhang, "customer", name="张伟的客户")
    zhangs_contract = create(zhang, "contract", name="张伟的合同", customer=own["id"],
                             amount="5000")
    payment = create(zhang, "payment", contract=zhangs_contract["id"], amount="100")
    moved = ok(client_of("wang").patch(f"{RECORDS.format('payment')}/{payment['id']}", json={
        "version": payment["version"], "contract": lis_contract["id"]}))
    changed = ok(zhang.patch(f"{RECORDS.format('payment')}/{payment['id']}", json={
        "version": moved["version"], "remark": "已确认"}))
    assert changed["remark"] == "已确认" and changed["contract"] == lis_contract["id"]


# -- roll-ups on a parent -----------------------------------------------------------------
def test_a_payment_versions_and_audits_its_contracts_roll_ups(li, lis_contract):
    before = get(li, "contract", lis_contract["id"])
    create(li, "payment", contract=lis_contract["id"], amount="30000", status="approved")
    after = get(li, "contract", lis_contract["id"])
    assert after["received_amount"] == "30000.00" and after["outstanding_amount"] == "70000.00"
    assert after["version"] == before["version"] + 1
    history = ok(li.get(f"{RECORDS.format('contract')}/{lis_contract['id']}/history"))["items"]
    latest = history[0]
    assert latest["action"] == "recalculate" and latest["actor_id"] is not None
    assert latest["changes"]["received_amount"] == ["0.00", "30000.00"]
    assert latest["changes"]["outstanding_amount"] == ["100000.00", "70000.00"]


def test_an_edit_read_before_a_payment_is_stale_afterwards(li, lis_contract):
    create(li, "payment", contract=lis_contract["id"], amount="10", status="approved")
    response = li.patch(f"{RECORDS.format('contract')}/{lis_contract['id']}", json={
        "version": lis_contract["version"], "remark": "旧版本"})
    assert response.status_code == 409


def test_a_quote_with_lines_is_one_version_and_one_entry(zhang):
    customer = create(zhang, "customer", name="报价客户")
    product = create(zhang, "product", name="服务器", price="1000")
    quote = create(zhang, "quote", name="报价", customer=customer["id"],
                   lines=[{"product": product["id"], "quantity": "2"}])
    assert quote["version"] == 1 and quote["total"] == "2000.00"
    history = ok(zhang.get(f"{RECORDS.format('quote')}/{quote['id']}/history"))["items"]
    assert [e["action"] for e in history] == ["create"]


# -- transfer and the approval lock -----------------------------------------------------------
@pytest.fixture
def locked_opportunity(zhang) -> dict:
    customer = create(zhang, "customer", name="大客户")
    record = create(zhang, "opportunity", name="大项目", customer=customer["id"],
                    business_type="standard", amount="800000")
    ok(zhang.post(f"{RECORDS.format('opportunity')}/{record['id']}/approvals",
                  json={"flow": "large_opportunity"}), 201)
    return record


def test_a_transfer_leaves_an_opportunity_in_approval_where_it_is(zhang, people,
                                                                   locked_opportunity):
    before = get(zhang, "opportunity", locked_opportunity["id"])
    response = zhang.post("/api/v1/objects/opportunity/transfer", json={
        "ids": [locked_opportunity["id"]], "owner": people["li"].user_id})
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["message"] == \
        f"审批单 1 审批中，商机 {locked_opportunity['id']} 已锁定"
    stored = get(zhang, "opportunity", locked_opportunity["id"])
    assert stored["owner"] == people["zhang"].user_id
    assert stored["version"] == before["version"]


def test_a_cascading_transfer_refuses_a_locked_related_record(zhang, people,
                                                            locked_opportunity):
    response = zhang.post("/api/v1/objects/customer/transfer", json={
        "ids": [locked_opportunity["customer"]], "owner": people["li"].user_id,
        "cascade": ["opportunity.customer"]})
    assert response.status_code == 409, response.get_json()
    customer = get(zhang, "customer", locked_opportunity["customer"])
    assert customer["owner"] == people["zhang"].user_id


# -- formulas and titles over a lookup -------------------------------------------------------
def test_a_title_of_a_record_out_of_scope_is_not_shown(zhang, client_of, li, lis_contract):
    """wang links zhang's quote to li's customer: zhang sees the id, not the name."""
    own = create(zhang, "customer", name="张伟的客户")
    quote = create(zhang, "quote", name="报价", customer=own["id"])
    ok(client_of("wang").patch(f"{RECORDS.format('quote')}/{quote['id']}", json={
        "version": quote["version"], "customer": lis_contract["customer"]}))
    listed = ok(zhang.get(RECORDS.format("quote"), query_string={"titles": "1"}))["items"]
    assert listed[0]["customer"] == lis_contract["customer"]
    assert "customer" not in listed[0].get("_titles", {})
    assert listed[0]["_titles"]["owner"]  # titles in scope are still given
    seen_by_li = ok(client_of("wang").get(RECORDS.format("quote"),
                                          query_string={"titles": "1"}))["items"]
    assert seen_by_li[0]["_titles"]["customer"] == "李娜的客户"


def test_a_formula_over_a_hidden_field_is_hidden_too(zhang, hiding):
    hiding("customer", "level")
    own = create(zhang, "customer", name="张伟的客户")
    quote = create(zhang, "quote", name="报价", customer=own["id"])
    assert "customer_level" not in quote
    assert "customer_level" not in get(zhang, "quote", quote["id"])
    filtered = zhang.get(RECORDS.format("quote"), query_string={
        "filter": '[["customer_level", "eq", "B"]]'})
    assert filtered.status_code == 400
    assert set(filtered.get_json()["error"]["fields"]) == {"customer_level"}


def test_a_line_amount_over_a_hidden_discount_is_hidden_with_its_sum(zhang, hiding):
    hiding("quote_line", "discount")
    own = create(zhang, "customer", name="张伟的客户")
    product = create(zhang, "product", name="服务器", price="1000")
    quote = create(zhang, "quote", name="报价", customer=own["id"],
                   lines=[{"product": product["id"], "quantity": "1"}])
    line = quote["lines"][0]
    assert "discount" not in line and "amount" not in line and "unit_price" in line
    assert "total" not in quote and "total_with_tax" not in quote
    assert "line_count" in quote


# -- definitions ----------------------------------------------------------------------------
def test_an_object_definition_leaves_out_what_the_caller_may_not_see(zhang, hiding):
    hiding("customer", "level")
    fields = {f["name"] for f in ok(zhang.get("/api/v1/objects/customer"))["fields"]}
    assert "level" not in fields and "name" in fields
    quote = ok(zhang.get("/api/v1/objects/quote"))
    assert "customer_level" not in {f["name"] for f in quote["fields"]}
    assert all("customer_level" not in s["fields"] for s in quote["layouts"]["form"])


def test_the_openapi_document_leaves_out_what_the_caller_may_not_see(zhang, anonymous,
                                                                      client_of, hiding):
    hiding("customer", "level")

    def properties(client, schema: str) -> set[str]:
        document = ok(client.get("/api/v1/openapi.json"))
        return set(document["components"]["schemas"][schema]["properties"])

    assert "level" not in properties(zhang, "Customer")
    assert "level" not in properties(zhang, "CustomerInput")
    assert "customer_level" not in properties(zhang, "Quote")
    assert "level" not in properties(anonymous, "Customer")  # some role hides it
    assert "level" in properties(client_of("qian"), "Customer")
