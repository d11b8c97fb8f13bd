"""Malformed input is a 4xx with the API's JSON error body (a page: a 4xx page), never a
server error: integers beyond 64 bits, lone UTF-16 surrogates, NUL characters, deeply
nested JSON and filters, and an upload's broken content type. Over HTTP on SQLite and
PostgreSQL (PostgreSQL refuses NUL in text, so it matters there)."""

from __future__ import annotations

import base64

import pytest

from conftest import ApiClient

HUGE = 658506028608450757374165123072  # beyond 2**63
RECORDS = "/api/v1/objects/{}/records"


def error_of(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def raw_json(client: ApiClient, method: str, url: str, text: str, **kw):
    """A body as sent on the wire: JSON escapes (``\\ud800``) that Python's encoder would
    not produce from a str."""
    return client.request(method, url, data=text.encode(), content_type="application/json",
                          **kw)


def customer(api: ApiClient, **values) -> dict:
    response = api.post(RECORDS.format("customer"), json={"name": "华为", **values})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# -- integers beyond 64 bits -----------------------------------------------------------------
@pytest.mark.parametrize("method, url", [
    ("DELETE", f"/api/v1/objects/contact/records/{HUGE}"),
    ("GET", f"/api/v1/objects/customer/records/{HUGE}/history"),
    ("GET", "/api/v1/approvals/483276867405396350903255040"),
    ("POST", f"/api/v1/objects/customer/records/{HUGE}/restore"),
])
def test_an_id_beyond_64_bits_in_the_path_is_not_found(api, method, url):
    assert error_of(api.request(method, url), 404)["code"] == "not_found"


def test_a_transfer_to_an_owner_beyond_64_bits_is_refused_naming_owner(api):
    record = customer(api)
    response = api.post("/api/v1/objects/customer/transfer",
                        json={"ids": [record["id"]], "owner": 4624171941456216068128671531008})
    assert "owner" in error_of(response, 422)["fields"]


@pytest.mark.parametrize("values, field", [
    ({"name": "李总", "customer": HUGE}, "customer"),  # a lookup id
    ({"name": "李总", "customer": str(HUGE)}, "customer"),  # the same, as a form sends it
])
def test_a_lookup_id_beyond_64_bits_is_refused_naming_the_field(api, values, field):
    response = api.post(RECORDS.format("contact"), json=values)
    assert field in error_of(response, 422)["fields"]


@pytest.mark.parametrize("employees", [HUGE, str(HUGE), "9300000000000000000"])
def test_an_integer_field_beyond_64_bits_is_refused_naming_the_field(api, employees):
    response = api.post(RECORDS.format("customer"), json={"name": "华为", "employees": employees})
    assert "employees" in error_of(response, 422)["fields"]


@pytest.mark.parametrize("method, url, name", [
    ("DELETE", f"/api/v1/objects/customer/records/1?version={HUGE}", "version"),
    ("GET", f"/api/v1/objects/customer/records?page={HUGE}", "page"),
    ("GET", f"/api/v1/objects/customer/records?page_size={HUGE}", "page_size"),
    ("GET", f"/api/v1/approvals?limit={HUGE}", "limit"),
    ("GET", f"/api/v1/notifications?before={HUGE}", "before"),
])
def test_a_query_parameter_beyond_64_bits_is_refused_naming_it(api, method, url, name):
    error = error_of(api.request(method, url), 400)
    assert name in error["fields"] or error["message"].startswith(name)


# -- text no database stores ---------------------------------------------------------------
def test_a_lone_surrogate_in_a_comment_is_refused_naming_it(api):
    response = raw_json(api, "POST", "/api/v1/approvals/1/reject",
                        '{"comment": "\\uda5a\\udfcf&\\b\\ud800"}')
    assert "comment" in error_of(response, 422)["fields"]


@pytest.mark.parametrize("url", ["/api/v1/objects/customer/records/1/team",
                                 "/api/v1/todos/1/handled"])
def test_a_lone_surrogate_in_a_key_is_refused(api, url):
    response = raw_json(api, "POST", url, '{"user_id": 1, "\\udfcf": 2}')
    assert error_of(response, 400)["code"] == "bad_request"


def test_a_lone_surrogate_in_a_text_value_is_refused_and_nothing_is_written(api):
    response = raw_json(api, "POST", RECORDS.format("customer"), '{"name": "华\\ud800为"}')
    assert "name" in error_of(response, 422)["fields"]
    assert api.get(RECORDS.format("customer")).get_json()["total"] == 0


@pytest.mark.parametrize("value", ["\\ud800", "\\u0000"])
def test_a_filter_value_no_database_stores_is_refused_naming_the_filter(api, value):
    response = api.get(RECORDS.format("customer"),
                       query_string={"filter": f'[["name", "contains", "a{value}"]]'})
    assert "filter[0][2]" in error_of(response, 422)["fields"]


def test_a_nul_in_a_text_value_is_refused_naming_the_field(api):
    response = api.post(RECORDS.format("customer"), json={"name": "华\x00为"})
    assert "name" in error_of(response, 422)["fields"]


@pytest.mark.parametrize("url", [RECORDS.format("customer") + "?q=a%00b",
                                 "/api/v1/objects/customer/lookup?q=a%00b"])
def test_a_nul_in_a_keyword_search_is_refused_naming_q(api, url):
    assert "q" in error_of(api.get(url), 400)["fields"]


def test_a_nul_in_the_login_name_is_refused(anonymous, admin):
    response = anonymous.post("/api/v1/auth/token",
                              json={"username": "ad\x00min", "password": "admin-password"})
    assert "username" in error_of(response, 422)["fields"]


def test_a_nul_in_the_login_form_is_a_client_error_page(app, admin):
    client = app.test_client()
    response = client.post("/login", data={"username": "ad\x00min", "password": "x"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "username: 不能包含空字符" in response.get_data(as_text=True)


def test_a_nul_in_a_page_form_is_a_client_error_page_naming_the_field(web):
    web.get("/o/customer/new")
    response = web.post("/o/customer/new", {"name": "华\x00为"},
                        headers={"Referer": "http://localhost/o/customer/new"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "客户名称: 不能包含空字符" in html
    assert 'id="error-back" href="/o/customer/new"' in html


# -- nesting -----------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [40, 100_000])
def test_a_deeply_nested_body_is_refused_even_before_signing_in(anonymous, depth):
    response = raw_json(anonymous, "POST", "/api/v1/auth/token", "[" * depth + "]" * depth)
    assert error_of(response, 400)["code"] == "bad_request"


def test_a_deeply_nested_body_is_refused_on_a_write(api):
    body = '{"name": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    response = raw_json(api, "POST", RECORDS.format("customer"), body)
    assert error_of(response, 400)["code"] == "bad_request"


def nested_filter(depth: int) -> str:
    return '{"and": [' * depth + '["name", "eq", "x"]' + "]}" * depth


@pytest.mark.parametrize("depth", [10, 1_100])
def test_a_filter_nested_too_deep_is_refused_by_the_api(api, depth):
    response = api.get(RECORDS.format("customer"), query_string={"filter": nested_filter(depth)})
    assert error_of(response, 400)["message"].startswith("filter")


def test_a_filter_nested_too_deep_is_reset_with_a_warning_on_the_list_page(web):
    response = web.get("/o/customer", query_string={"filter": nested_filter(10)})
    assert response.status_code == 200
    assert "filter: nested deeper than" in response.get_data(as_text=True)


def test_a_filter_nested_a_thousand_levels_is_a_client_error_page(web):
    response = web.get("/o/customer", query_string={"filter": nested_filter(1_100)})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "filter: 嵌套超过 32 层" in response.get_data(as_text=True)


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'["\\u0000"]', b'["\\ud800"]'])
def test_a_forged_cursor_is_a_bad_query(api, raw):
    cursor = base64.urlsafe_b64encode(raw).decode()
    response = api.get(RECORDS.format("contract"), query_string={"cursor": cursor,
                                                                "sort": "code"})
    assert error_of(response, 400)["message"].startswith("cursor")
