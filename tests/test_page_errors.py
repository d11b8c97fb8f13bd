"""Pages answer a refusal with the error page in the user's language, never the API's
JSON body: a page number or filter the query engine refuses, text no database stores in
a posted form. The API keeps its JSON errors. Over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

HUGE = "99999999999999999999"  # beyond 2**63


def html_error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


@pytest.mark.parametrize("url", [
    f"/o/customer/recycle-bin?page={HUGE}",
    "/o/customer/recycle-bin?page=999999999",
])
def test_a_page_number_or_sort_the_recycle_bin_refuses_is_an_error_page(web, url):
    html = html_error(web.get(url), 400)
    assert '"error"' not in html
    assert "<html" in html and 'id="error-back"' in html



def test_a_refused_list_query_is_worded_in_chinese_with_a_way_back(web):
    html = html_error(web.get("/o/customer/recycle-bin?page=999999999"), 400)
    assert "无法按所请求的筛选条件、排序或页码显示此列表" in html
    assert 'id="error-back" href="/o/customer/recycle-bin"' in html


def test_a_refused_list_query_is_worded_in_english_for_an_english_user(english):
    html = html_error(english.get("/o/customer/recycle-bin?page=999999999"), 400)
    assert "This list cannot be shown with the filter, sort or page asked for." in html


def test_a_filter_too_deep_for_the_export_is_an_error_page_not_json(web):
    deep = '{"and": [' * 20 + '["name", "eq", "x"]' + "]}" * 20
    response = web.get("/o/customer/export", query_string={"filter": deep, "format": "csv"})
    html = html_error(response, 400)
    assert "嵌套超过 32 层" in html and '"error"' not in html


def test_the_api_keeps_its_json_error_for_the_same_page_number(api):
    response = api.get(f"/api/v1/objects/customer/records?deleted=1&page={HUGE}")
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.get_json()["error"]["fields"] == {"page": "is out of range"}


def test_a_nul_in_a_form_is_an_error_page_naming_the_field_in_english(english):
    english.get("/o/customer/new")
    response = english.post("/o/customer/new", {"name": "华\x00为"},
                            headers={"Referer": "http://localhost/o/customer/new"})
    html = html_error(response, 400)
    assert "Name: must not contain NUL characters" in html
    assert 'id="error-back" href="/o/customer/new"' in html


def test_the_back_link_never_points_to_another_site(web):
    web.get("/o/customer/new")
    response = web.post("/o/customer/new", {"name": "华\x00为"},
                        headers={"Referer": "http://evil.example/o/customer/new"})
    assert 'id="error-back"' not in html_error(response, 400)


# -- the API's own wording ------------------------------------------------------------------
def test_a_chinese_users_malformed_api_body_is_refused_in_chinese(client_of):
    response = client_of("zhang").post("/api/v1/objects/customer/records", data="[1, 2]",
                                       content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "请求体必须是 JSON 对象"


def test_an_english_callers_malformed_api_body_is_refused_in_english(anonymous):
    response = anonymous.post("/api/v1/auth/token", data="[1]", content_type="application/json",
                              headers={"Accept-Language": "en-US,en;q=0.9"})
    assert response.get_json()["error"]["message"] == "the body must be a JSON object"


def test_a_chinese_accept_language_words_an_anonymous_refusal_in_chinese(anonymous):
    response = anonymous.post("/api/v1/auth/token", data="[1]", content_type="application/json",
                              headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert response.get_json()["error"]["message"] == "请求体必须是 JSON 对象"


def test_a_chinese_users_refused_field_is_worded_in_chinese(client_of, people):
    response = client_of("zhang").post("/api/v1/objects/customer/transfer",
                                       json={"ids": "all", "owner": 1})
    error = response.get_json()["error"]
    assert response.status_code == 422
    assert error["message"] == "ids 必须是记录编号的列表"
    assert error["fields"] == {"ids": "必须是记录编号的列表"}


def test_a_refused_page_number_reads_in_chinese_on_the_page(web):
    html = html_error(web.get(f"/o/customer/recycle-bin?page={HUGE}"), 400)
    assert "页码须在 1 到" in html and "page must be" not in html
