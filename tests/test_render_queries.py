"""Drawing a page runs no SQL: the view reads what the page shows (cells, a form's choices)
before its template renders, so a grid of many rows costs no more statements than one.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from conftest import ApiClient

ADMIN = "/api/v1/admin"


@pytest.fixture
def quotes(web, api: ApiClient, make_record):
    """Quotes whose form offers users (a user column in each line) and dimension nodes (the
    quote's product-line dimension); ``make(n)`` gives a quote with ``n`` lines."""
    added = api.post(f"{ADMIN}/objects/quote_line/fields", json={
        "name": "checker", "type": "user", "label": {"en": "Checker", "zh": "核对人"}})
    assert added.status_code == 201, added.get_json()
    assert api.post(f"{ADMIN}/dimensions", json={
        "name": "line", "label": {"en": "Line", "zh": "产品线"}}).status_code == 201
    switched = api.request("PUT", f"{ADMIN}/dimensions/line/objects/quote", json={"on": True})
    assert switched.status_code == 200, switched.get_json()
    customer = make_record("customer", name="渲染客户")
    product = make_record("product", name="路由器", price="100")

    def make(n: int) -> int:
        form = {"name": f"{n} 行报价", "customer": str(customer["id"]), "lines-present": "1"}
        for i in range(n):
            form |= {f"lines-{i}-product": str(product["id"]), f"lines-{i}-quantity": "1"}
        response = web.post("/o/quote/new", form)
        assert response.status_code == 302, response.get_data(as_text=True)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    return make


def test_drawing_an_edit_form_with_user_and_dimension_choices_runs_no_sql(
        web, quotes, rendering_queries):
    quote_id = quotes(3)
    with rendering_queries() as statements:
        html = web.text(f"/o/quote/{quote_id}/edit")
    assert html.count('name="lines-0-checker"') == 1 and 'name="dim_line"' in html
    assert statements == []


def test_drawing_a_new_form_runs_no_sql(web, quotes, rendering_queries):
    with rendering_queries() as statements:
        web.text("/o/quote/new")
    assert statements == []


def test_drawing_a_detail_page_runs_no_sql(web, quotes, rendering_queries):
    quote_id = quotes(3)
    with rendering_queries() as statements:
        html = web.text(f"/o/quote/{quote_id}")
    assert html.count('<tr class="line-row">') == 3
    assert statements == []


@pytest.mark.parametrize("page", ["/o/quote/{}/edit", "/o/quote/{}"])
def test_a_pages_statements_do_not_grow_with_its_lines(web, quotes, count_queries, page):
    one, four = quotes(1), quotes(4)
    web.text(page.format(one))  # warm: the registry and the session are cached
    counted = []
    for quote_id in (one, four):
        with count_queries() as counter:
            web.text(page.format(quote_id))
        counted.append(counter.count)
    assert counted[0] == counted[1]
