"""The REST API under /api/v1, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

RECORDS = "/api/v1/objects/customer/records"


def create(api, object_name="customer", **values):
    response = api.post(f"/api/v1/objects/{object_name}/records", json=values)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def test_a_token_is_issued_for_a_valid_password(anonymous, admin):
    response = anonymous.post("/api/v1/auth/token",
                              json={"username": "admin", "password": "admin-password"})
    assert response.status_code == 200 and len(response.get_json()["token"]) > 30


@pytest.mark.parametrize("body", [{"username": "admin", "password": "wrong-password"},
                                  {"username": "nobody", "password": "admin-password"}])
def test_a_wrong_login_does_not_say_which_part_was_wrong(anonymous, admin, body):
    response = anonymous.post("/api/v1/auth/token", json=body)
    assert response.status_code == 401
    assert error_of(response)["message"] == "wrong username or password"


def test_calls_without_a_token_are_401(anonymous):
    assert anonymous.get(RECORDS).status_code == 401
    bad = anonymous.get(RECORDS, headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 401 and error_of(bad)["code"] == "unauthorized"


def test_objects_are_listed_with_labels(api):
    items = api.get("/api/v1/objects").get_json()["items"]
    customer = next(i for i in items if i["name"] == "customer")
    assert customer["label"] == {"en": "Customer", "zh": "客户"}
    assert customer["group_label"] == {"en": "Sales", "zh": "售中"}


def test_an_object_definition_is_complete(api):
    body = api.get("/api/v1/objects/customer").get_json()
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["level"]["options"][0] == {"value": "A", "label": {"en": "A (key)",
                                                                      "zh": "A（重点客户）"},
                                             "active": True, "color": "#d9534f"}
    assert fields["name"]["required"] and fields["name"]["unique"]
    assert fields["created_at"]["system"] and not fields["created_at"]["writable"]
    assert body["layouts"]["form"][0]["label"]["zh"] == "基本信息"


def test_an_object_definition_tells_business_types_and_related_lists(api):
    body = api.get("/api/v1/objects/customer").get_json()
    key_account = next(b for b in body["business_types"] if b["name"] == "key_account")
    assert key_account["required"] == ["industry", "phone"]
    assert key_account["form"][0]["label"]["en"] == "Account profile"
    assert [r["object"] for r in body["layouts"]["related"]][:2] == ["opportunity", "contact"]


def test_unknown_object_is_404(api):
    assert error_of(api.get("/api/v1/objects/spaceship/records"))["code"] == "not_found"


def test_create_answers_201_with_the_record_and_its_location(api):
    response = api.post(RECORDS, json={"name": "Acme", "annual_revenue": 1234.5})
    body = response.get_json()
    assert response.status_code == 201
    assert response.headers["Location"] == f"{RECORDS}/{body['id']}"
    assert body["annual_revenue"] == "1234.50" and body["level"] == "B" and body["version"] == 1


def test_bad_values_are_422_naming_each_field_and_nothing_is_written(api):
    response = api.post(RECORDS, json={"name": ["list"], "employees": "x", "email": "no"})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"name": "must be a string",
                                            "employees": "must be a whole number",
                                            "email": "is not a valid email address"}
    assert api.get(RECORDS).get_json()["total"] == 0


def test_numbers_below_a_fields_minimum_are_422_naming_the_field(api):
    response = api.post(RECORDS, json={"name": "杭州云启信息技术有限公司", "employees": -10,
                                       "annual_revenue": "-99999999999999"})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"employees": "must be at least 0",
                                            "annual_revenue": "must be at least 0"}
    assert api.get(RECORDS).get_json()["total"] == 0


def test_numbers_above_a_fields_maximum_are_422_naming_the_field(api):
    customer = create(api, name="杭州云启信息技术有限公司")
    response = api.post("/api/v1/objects/quote/records",
                        json={"name": "年度订阅报价", "customer": customer["id"], "tax_rate": "130"})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"tax_rate": "must be at most 100"}


def test_amounts_beyond_what_the_column_stores_are_422_not_500(api):
    response = api.post(RECORDS, json={"name": "A", "annual_revenue": "1" + "0" * 20,
                                       "employees": str(2**63)})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {
        "annual_revenue": "has more than 16 digits before the decimal point",
        "employees": "is too large"}


def test_the_openapi_document_gives_integer_ranges(anonymous):
    schema = anonymous.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    [employees, _null] = schema["CustomerInput"]["properties"]["employees"]["anyOf"]
    assert employees["minimum"] == 0


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null"])
def test_a_body_that_is_not_an_object_is_400(api, body):
    response = api.post(RECORDS, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error_of(response)["code"] == "bad_request"


def test_an_oversize_body_is_refused_cleanly(api):
    response = api.post(RECORDS, json={"name": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413 and error_of(response)["code"]


def test_an_oversize_value_names_the_field(api):
    response = api.post(RECORDS, json={"name": "x" * 5000})
    assert error_of(response)["fields"] == {"name": "is longer than 200 characters"}


def test_get_patch_delete_restore_and_history(api):
    created = create(api, name="Acme")
    url = f"{RECORDS}/{created['id']}"
    assert api.get(url).get_json()["name"] == "Acme"
    patched = api.patch(url, json={"version": 1, "level": "A"})
    assert patched.status_code == 200 and patched.get_json()["version"] == 2
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    bin_items = api.get("/api/v1/objects/customer/recycle-bin").get_json()["items"]
    assert [i["id"] for i in bin_items] == [created["id"]]
    assert api.post(f"{url}/restore").get_json()["name"] == "Acme"
    history = api.get(f"{url}/history").get_json()["items"]
    assert [h["action"] for h in history] == ["restore", "delete", "update", "create"]
    assert history[2]["changes"] == {"level": ["B", "A"]}


def test_a_stale_patch_is_409_and_changes_nothing(api):
    created = create(api, name="Acme")
    url = f"{RECORDS}/{created['id']}"
    api.patch(url, json={"version": 1, "level": "A"})
    response = api.patch(url, json={"version": 1, "level": "C"})
    assert response.status_code == 409
    assert response.get_json()["error"]["current_version"] == 2
    assert api.get(url).get_json()["level"] == "A"


def test_patch_without_a_version_is_refused(api, english_admin):
    created = create(api, name="Acme")
    response = api.patch(f"{RECORDS}/{created['id']}", json={"level": "A"})
    assert response.status_code == 422 and error_of(response)["fields"] == {
        "version": "is required"}


def test_a_missing_record_is_404(api):
    assert api.get(f"{RECORDS}/99999").status_code == 404
    assert api.patch(f"{RECORDS}/99999", json={"version": 1}).status_code == 404
    assert api.delete(f"{RECORDS}/99999").status_code == 404


def test_list_filters_sorts_and_pages(api):
    for name, amount in [("A", 100), ("B", 300), ("C", 200), ("D", 400)]:
        customer = create(api, name=f"Co {name}")
        create(api, "opportunity", name=name, amount=amount, customer=customer["id"])
    url = "/api/v1/objects/opportunity/records"
    body = api.get(url, query_string={"filter": json.dumps([["amount", "gte", 200]]),
                                      "sort": "-amount", "page_size": 2, "titles": "1"}
                   ).get_json()
    assert [i["name"] for i in body["items"]] == ["D", "B"]
    assert body["items"][0]["_titles"]["customer"] == "Co D"
    assert body["items"][0]["_titles"]["owner"] == "admin"
    assert (body["total"], body["page"], body["page_size"]) == (3, 1, 2)
    following = api.get(url, query_string={"filter": json.dumps([["amount", "gte", 200]]),
                                           "sort": "-amount", "page_size": 2,
                                           "cursor": body["next_cursor"]}).get_json()
    assert [i["name"] for i in following["items"]] == ["C"]
    assert following["next_cursor"] is None
    assert [i["name"] for i in api.get(url, query_string={"q": "C", "fields": "name"}
                                       ).get_json()["items"]] == ["C"]


@pytest.mark.parametrize("params, field", [
    ({"filter": "[[1,"}, "filter"),
    ({"filter": json.dumps([["secret", "eq", 1]])}, "secret"),
    ({"filter": json.dumps([["amount", "regex", ".*"]])}, "amount"),
    ({"sort": "amount;DELETE FROM o_opportunity"}, "amount;DELETE FROM o_opportunity"),
    ({"page": "two"}, "page"),
])
def test_bad_list_queries_are_400_naming_the_field(api, params, field):
    response = api.get("/api/v1/objects/opportunity/records", query_string=params)
    assert response.status_code == 400 and field in error_of(response)["fields"]


def test_a_warm_list_request_runs_at_most_three_statements(app, api, count_queries):
    app.extensions["metacrm"].registries.poll_seconds = 60  # as in production: warm cache
    for i in range(30):
        create(api, name=f"Co {i}")
    with count_queries() as counter:
        response = api.get(RECORDS, query_string={"page_size": 10, "sort": "-created_at"})
    assert response.status_code == 200 and response.get_json()["total"] == 30
    statements = [s for s in counter.statements if s != "BEGIN"]
    assert len(statements) <= 3, statements
    assert not any("meta_" in s for s in statements)


def test_openapi_document_is_valid_and_has_a_schema_per_object(anonymous):
    document = anonymous.get("/api/v1/openapi.json").get_json()
    validate(document)
    schemas = document["components"]["schemas"]
    assert {"Customer", "CustomerInput", "Opportunity", "Contact"} <= set(schemas)
    assert schemas["Customer"]["properties"]["level"]["anyOf"][0]["enum"] == ["A", "B", "C"]
    assert "/objects/opportunity/records/{id}" in document["paths"]


def test_unexpected_errors_are_json_without_a_stack_trace(app, api, monkeypatch):
    from metacrm.engine.writing import records

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(records, "get", explode)
    response = api.get(f"{RECORDS}/1")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert error_of(response)["code"] == "internal_error"
