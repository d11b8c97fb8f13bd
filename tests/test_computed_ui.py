"""Computed fields, line items, regions, dependent picklists and lookup filters in the
generated pages, through the Flask test client on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest

from metacrm.engine.actor import SYSTEM
from metacrm.engine.writing import lines, records


def field_block(html: str, name: str) -> str:
    """The form's (or detail page's) markup for one field."""
    start = html.index(f'data-field="{name}"')
    end = html.find('data-field="', start + 20)
    return html[start:end if end > 0 else None]


def cell(html: str, row: int, column: str) -> str:
    """One cell of the lines grid of a form."""
    rows = html.split('<tr class="line-row">')[1:]
    body = rows[row]
    start = body.index(f'data-column="{column}"')
    return body[start:body.index("</td>", start)]


@pytest.fixture
def catalogue(make_record):
    """A customer and two products with list prices."""
    customer = make_record("customer", name="报价客户")
    router = make_record("product", name="路由器", price="1000")
    switch = make_record("product", name="交换机", price="250.50")
    return customer, router, switch


def quote_form(customer_id: int, **extra) -> dict:
    return {"name": "二月报价", "customer": str(customer_id), "lines-present": "1", **extra}


def test_the_quote_form_has_a_lines_grid_and_read_only_computed_fields(web):
    html = web.text("/o/quote/new")
    assert 'name="lines-present" value="1"' in html
    template = html[html.index('<template class="line-template">'):html.index("</template>")]
    for column in ("product", "quantity", "unit_price", "discount"):
        assert f'name="lines-__index__-{column}"' in template
    assert 'name="lines-__index__-quote"' not in template  # the master lookup is the quote
    assert 'name="lines-__index__-amount"' not in template
    assert "保存后自动计算" in cell(template.replace("<template", ""), 0, "amount")
    assert 'value="1"' in cell(template, 0, "quantity")  # the line's default
    total = field_block(html, "total")
    assert 'name="total"' not in total and "保存后自动计算" in total and "readonly" in total
    hint = field_block(html, "quote_date")  # a hint in words, not the default's expression
    assert "留空则保存时自动填写" in hint and "today()" not in hint
    assert 'name="quote_date" value=""' in field_block(html, "quote_date")


def test_a_quote_with_two_lines_is_saved_and_its_detail_shows_them(web, catalogue, session,
                                                                  registry):
    customer, router, switch = catalogue
    response = web.post("/o/quote/new", quote_form(customer["id"], **{
        "lines-0-product": str(router["id"]), "lines-0-quantity": "2",
        "lines-0-unit_price": "", "lines-0-discount": "0",
        "lines-3-product": str(switch["id"]), "lines-3-quantity": "4",
        "lines-3-unit_price": "200", "lines-3-discount": "10"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    quote_id = int(response.headers["Location"].rsplit("/", 1)[1])
    quote = records.get(session, registry, "quote", quote_id, actor=SYSTEM)
    assert str(quote["total"]) == "2720.00"  # 2 × 1000 + 4 × 200 × 90%
    assert quote["quote_date"] is not None  # its default expression, evaluated by the engine
    html = web.text(f"/o/quote/{quote_id}")
    table = field_block(html, "lines")
    assert table.count('<tr class="line-row">') == 2
    assert "路由器" in table and "交换机" in table and "¥2,000.00" in table and "¥720.00" in table
    assert "¥2,720.00" in field_block(html, "total")
    assert 'data-object="quote_line"' not in html  # no related list besides the lines table


def test_editing_the_grid_updates_removes_and_adds_lines(web, catalogue, session, registry,
                                                         admin):
    customer, router, switch = catalogue
    quote = records.create(session, registry, "quote", {
        "name": "改报价", "customer": customer["id"],
        "lines": [{"product": router["id"], "quantity": "1"},
                  {"product": switch["id"], "quantity": "1"}]}, actor=admin)
    session.commit()
    stored = lines.read(session, registry, registry.object("quote"), [quote["id"]],
                        actor=admin)["lines"][quote["id"]]
    html = web.text(f"/o/quote/{quote['id']}/edit")
    assert f'name="lines-0-id" value="{stored[0]["id"]}"' in html
    assert 'value="路由器"' in cell(html, 0, "product")
    assert "¥1,000.00" in cell(html, 0, "amount")  # a stored line shows its amount
    response = web.post(f"/o/quote/{quote['id']}/edit", quote_form(customer["id"], **{
        "version": str(quote["version"]),
        "lines-0-id": str(stored[0]["id"]), "lines-0-product": str(router["id"]),
        "lines-0-quantity": "3", "lines-0-unit_price": "1000", "lines-0-discount": "0",
        "lines-5-product": str(switch["id"]), "lines-5-quantity": "2",
        "lines-5-unit_price": "100", "lines-5-discount": "0"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    session.commit()  # a fresh snapshot
    now = lines.read(session, registry, registry.object("quote"), [quote["id"]],
                     actor=admin)["lines"][quote["id"]]
    assert [(r["product"], str(r["quantity"])) for r in now] == [
        (router["id"], "3.00"), (switch["id"], "2.00")]
    assert now[0]["id"] == stored[0]["id"] and stored[1]["id"] not in {r["id"] for r in now}


def test_an_empty_grid_deletes_every_line_and_a_missing_grid_keeps_them(web, catalogue,
                                                                       session, registry,
                                                                       admin):
    customer, router, _ = catalogue
    quote = records.create(session, registry, "quote", {
        "name": "清空", "customer": customer["id"],
        "lines": [{"product": router["id"], "quantity": "1"}]}, actor=admin)
    session.commit()
    base = {"name": "清空", "customer": str(customer["id"])}
    web.get(f"/o/quote/{quote['id']}/edit")
    response = web.post(f"/o/quote/{quote['id']}/edit",  # no grid on the form
                        {**base, "version": str(quote["version"])})
    assert response.status_code == 302
    session.commit()
    read = lines.read(session, registry, registry.object("quote"), [quote["id"]], actor=admin)
    assert len(read["lines"][quote["id"]]) == 1
    version = records.get(session, registry, "quote", quote["id"], actor=admin)["version"]
    response = web.post(f"/o/quote/{quote['id']}/edit",
                        {**base, "lines-present": "1", "version": str(version)})
    assert response.status_code == 302
    session.commit()
    read = lines.read(session, registry, registry.object("quote"), [quote["id"]], actor=admin)
    assert read["lines"][quote["id"]] == []


def test_a_line_error_shows_in_its_cell_and_the_rows_are_kept(web, catalogue):
    customer, router, switch = catalogue
    response = web.post("/o/quote/new", quote_form(customer["id"], **{
        "lines-0-product": str(router["id"]), "lines-0-product__title": "路由器",
        "lines-0-quantity": "2", "lines-0-discount": "0",
        "lines-7-product": str(switch["id"]), "lines-7-product__title": "交换机",
        "lines-7-quantity": "0", "lines-7-discount": "0"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "数量必须大于零" in cell(html, 1, "quantity")
    assert "数量必须大于零" not in cell(html, 0, "quantity")
    assert 'name="lines-1-quantity" value="0"' in html  # renumbered in the posted order
    assert 'value="交换机"' in cell(html, 1, "product")
    assert 'value="二月报价"' in html


def test_a_blank_added_row_is_ignored(web, catalogue, session, registry):
    customer, router, _ = catalogue
    response = web.post("/o/quote/new", quote_form(customer["id"], **{
        "lines-0-product": str(router["id"]), "lines-0-quantity": "1",
        "lines-0-discount": "0",
        "lines-1-product": "", "lines-1-quantity": "1", "lines-1-unit_price": "",
        "lines-1-discount": "0"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    quote_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert records.get(session, registry, "quote", quote_id, actor=SYSTEM)["line_count"] == 1


def test_a_validation_rule_message_appears_next_to_its_field(web, make_record):
    customer = make_record("customer", name="规则客户")
    response = web.post("/o/quote/new", quote_form(customer["id"], quote_date="2026-03-10",
                                                   valid_until="2026-03-01"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "有效期不能早于报价日期" in field_block(html, "valid_until")
    assert 'value="2026-03-01"' in field_block(html, "valid_until")


def test_a_validation_rule_message_follows_the_language(english, make_record):
    customer = make_record("customer", name="Rule Co")
    response = english.post("/o/quote/new", quote_form(customer["id"], quote_date="2026-03-10",
                                                       valid_until="2026-03-01"))
    assert "The quote cannot expire before its date" in field_block(
        response.get_data(as_text=True), "valid_until")


def test_region_selects_show_the_stored_path_and_lists_show_its_names(web, make_record):
    customer = make_record("customer", name="天河客户", region="440106")
    html = web.text(f"/o/customer/{customer['id']}/edit")
    block = field_block(html, "region")
    assert block.count('name="region"') == 3
    for code in ("440000", "440100", "440106"):
        assert f'value="{code}" selected' in block
    assert 'value="440300"' in block  # the other cities of the province are offered
    assert "广东省 / 广州市 / 天河区" in web.text(f"/o/customer/{customer['id']}")
    assert "广东省 / 广州市 / 天河区" in web.text("/o/customer?columns=name,region")


def test_a_new_form_offers_provinces_only(web):
    block = field_block(web.text("/o/customer/new?business_type=standard"), "region")
    assert 'value="110000"' in block and 'value="440100"' not in block
    assert block.count("disabled") == 2


def test_the_deepest_consistent_region_choice_is_saved(web, session, registry):
    for chosen, saved in ((["440000", "440100", "440106"], "440106"),
                          (["440000", "440100", ""], "440100"),
                          (["110000", "440100", "440106"], "110000")):
        response = web.post("/o/customer/new?business_type=standard",
                            {"name": f"地区 {chosen}", "region": chosen})
        assert response.status_code == 302, response.get_data(as_text=True)
        record_id = int(response.headers["Location"].rsplit("/", 1)[1])
        session.commit()  # a fresh snapshot
        row = records.get(session, registry, "customer", record_id, actor=SYSTEM)
        assert row["region"] == saved


def test_the_region_children_endpoint(web, app):
    provinces = web.get("/api/v1/regions/children").get_json()
    assert {"code": "110000", "name": "北京市", "level": 1} in provinces
    cities = web.get("/api/v1/regions/440000/children").get_json()
    assert {"code": "440100", "name": "广州市", "level": 2} in cities
    assert web.get("/api/v1/regions/999999/children").status_code == 404
    assert app.test_client().get("/api/v1/regions/children").status_code == 401  # signed in only


def test_a_list_filtered_by_region_is_a_page(web, make_record):
    make_record("customer", name="深圳客户", region="440305")
    response = web.get("/o/customer?filter=" + json.dumps([["region", "within", "440000"]]))
    assert response.status_code == 200
    fields = re.search(r'id="filter-fields">(.*?)</script>', response.get_data(as_text=True))
    region = next(f for f in json.loads(fields[1]) if f["name"] == "region")
    assert "within" in region["operators"]


def test_dependent_options_follow_the_controlling_value(web, make_record):
    customer = make_record("customer", name="软件客户", industry="it", sub_industry="software")
    block = field_block(web.text(f"/o/customer/{customer['id']}/edit"), "sub_industry")
    assert 'data-depends-on="industry"' in block
    assert re.search(r'value="internet" data-parents="\[&#34;it&#34;\]" >', block)
    assert re.search(r'value="banking"[^>]*hidden disabled', block)
    assert re.search(r'value="software"[^>]*selected', block)
    fresh = field_block(web.text("/o/customer/new?business_type=standard"), "sub_industry")
    assert re.search(r'value="software"[^>]*hidden disabled', fresh)


def test_a_dependent_option_outside_its_parent_is_refused(web):
    response = web.post("/o/customer/new?business_type=standard",
                        {"name": "错配客户", "industry": "finance", "sub_industry": "software"})
    assert response.status_code == 422
    assert "field-error" in field_block(response.get_data(as_text=True), "sub_industry")


def test_filtered_lookups_send_the_fields_their_filter_reads(web):
    block = field_block(web.text("/o/quote/new"), "opportunity")
    assert 'data-filtered-field="quote.opportunity"' in block
    assert 'data-record="[&#34;customer&#34;]"' in block
    assert "data-record" not in field_block(web.text("/o/quote/new"), "customer")


def test_the_type_ahead_offers_only_candidates_the_filter_allows(web, make_record):
    mine, other = make_record("customer", name="甲公司"), make_record("customer", name="乙公司")
    make_record("opportunity", name="甲的商机", customer=mine["id"], amount=1)
    make_record("opportunity", name="乙的商机", customer=other["id"], amount=1)
    found = web.get("/api/v1/objects/opportunity/lookup", query_string={
        "q": "商机", "field": "quote.opportunity", "record[customer]": str(mine["id"])})
    assert [c["title"] for c in found.get_json()] == ["甲的商机"]
    unfiltered = web.get("/api/v1/objects/opportunity/lookup", query_string={"q": "商机"}).get_json()
    assert len(unfiltered) == 2


def test_the_type_ahead_refuses_a_field_of_another_target(web):
    response = web.get("/api/v1/objects/opportunity/lookup",
                       query_string={"q": "x", "field": "quote.customer"})
    assert response.status_code == 400


def test_the_history_shows_calculated_values_like_the_field(web, catalogue, session, registry,
                                                            admin):
    customer, router, _ = catalogue
    quote = records.create(session, registry, "quote", {
        "name": "历史", "customer": customer["id"], "tax_rate": "10",
        "lines": [{"product": router["id"], "quantity": "1"}]}, actor=admin)
    records.update_record(session, registry, "quote", quote["id"], {"tax_rate": "20"},
                          actor=admin)
    session.commit()
    html = web.text(f"/o/quote/{quote['id']}")
    history = html[html.index('id="tab-history"'):]
    assert "含税总额" in history and "¥1,100.00" in history and "¥1,200.00" in history


def test_an_error_about_a_whole_line_is_listed_above_the_form(web, catalogue, session,
                                                             registry, admin):
    customer, router, _ = catalogue
    quote = records.create(session, registry, "quote", {"name": "他人的行",
                                                        "customer": customer["id"]},
                           actor=admin)
    session.commit()
    web.get(f"/o/quote/{quote['id']}/edit")
    response = web.post(f"/o/quote/{quote['id']}/edit", quote_form(customer["id"], **{
        "version": str(quote["version"]),
        "lines-0-id": "987654", "lines-0-product": str(router["id"]),
        "lines-0-quantity": "1", "lines-0-discount": "0"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    errors = html[html.index('id="form-errors"'):html.index("</div>", html.index('id="form-errors"'))]
    assert "产品明细 第 1 行：记录 ID: 不是这条记录的明细行" in errors
    assert 'name="lines-0-id" value="987654"' in html  # the row as it was posted
