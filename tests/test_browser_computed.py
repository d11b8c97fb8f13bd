"""Line items, computed fields, validation rules, regions, dependent picklists and lookup
filters in a real headless Chromium (see tests/test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, serve, shot, sign_in  # noqa: F401 - a fixture

from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    def fill(session: Session) -> None:
        user_id = users.create_user(session, "admin", PASSWORD, is_admin=True,
                                    display_name="管理员")
        registry, actor = metastore.load_registry(session), users.load_actor(session, user_id)

        def make(object_name: str, **values) -> int:
            return records.create(session, registry, object_name, values, actor=actor)["id"]

        first, second = make("customer", name="星河科技"), make("customer", name="远山贸易")
        server_id = make("product", name="服务器", price="12000")
        make("product", name="安装服务", price="800")
        make("quote", name="样例报价", customer=first,
             lines=[{"product": server_id, "quantity": "1"}])
        make("opportunity", name="星河机房扩容", customer=first, amount="50000")
        make("opportunity", name="远山仓储系统", customer=second, amount="30000")

    with serve(tmp_path_factory.mktemp("computed"), fill) as (url, _engine):
        yield url


@pytest.fixture
def page(chromium, server):  # noqa: F811 - the fixture imported above
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.base = server
    sign_in(page)
    yield page
    context.close()


def choose(page, selector: str, text: str, pick: str | None = None) -> None:
    """Type into a lookup and pick the candidate (the first, or the one named)."""
    page.fill(selector, text)
    choices = page.locator(".lookup-choice")
    (choices.filter(has_text=pick) if pick else choices).first.click()


def test_two_lines_added_in_the_grid_make_the_quote_total(page):
    page.goto(page.base + "/o/quote/new")
    assert page.locator("[data-field=total] input").input_value() == "保存后自动计算"
    page.fill("#f-name", "机房报价")
    choose(page, "#f-customer", "星河")
    page.click("[data-add-line]")
    page.click("[data-add-line]")
    rows = page.locator("#f-lines tbody tr.line-row")
    assert rows.count() == 2
    choose(page, "#f-lines-0-product", "服务器")
    page.fill("#f-lines-0-quantity", "2")
    choose(page, "#f-lines-1-product", "安装")
    page.fill("#f-lines-1-quantity", "3")
    page.fill("#f-lines-1-unit_price", "500")
    shot(page, "quote-form-lines")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/quote/\d+$"))
    table = page.locator("[data-field=lines] table").inner_text()
    assert "服务器" in table and "¥24,000.00" in table and "¥1,500.00" in table
    assert page.locator("[data-field=total]").inner_text() == "¥25,500.00"
    shot(page, "quote-detail-lines")


def test_a_removed_row_is_not_saved(page):
    page.goto(page.base + "/o/quote/new")
    page.fill("#f-name", "删行报价")
    choose(page, "#f-customer", "远山")
    page.click("[data-add-line]")
    page.click("[data-add-line]")
    choose(page, "#f-lines-0-product", "服务器")
    choose(page, "#f-lines-1-product", "安装")
    page.locator("#f-lines tr.line-row").first.locator("[data-remove-line]").click()
    assert page.locator("#f-lines tr.line-row").count() == 1
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/quote/\d+$"))
    assert page.locator("[data-field=line_count]").inner_text() == "1"
    assert page.locator("[data-field=total]").inner_text() == "¥800.00"


def test_a_validation_rule_message_is_shown_next_to_its_field(page):
    page.goto(page.base + "/o/quote/new")
    page.fill("#f-name", "过期报价")
    choose(page, "#f-customer", "星河")
    page.fill("#f-quote_date", "2026-03-10")
    page.fill("#f-valid_until", "2026-03-01")
    page.click("#save")
    error = page.locator("[data-field=valid_until] .field-error")
    assert error.inner_text() == "有效期不能早于报价日期"
    assert page.input_value("#f-valid_until") == "2026-03-01"
    assert page.input_value("#f-name") == "过期报价"
    shot(page, "quote-validation-rule")


def test_a_line_error_is_shown_in_its_cell(page):
    page.goto(page.base + "/o/quote/new")
    page.fill("#f-name", "零数量报价")
    choose(page, "#f-customer", "星河")
    page.click("[data-add-line]")
    choose(page, "#f-lines-0-product", "服务器")
    page.fill("#f-lines-0-quantity", "0")
    page.click("#save")
    cell = page.locator("#f-lines tr.line-row [data-column=quantity]")
    assert cell.locator(".field-error").inner_text() == "数量必须大于零"
    assert page.input_value("#f-lines-0-product") == "服务器"


def test_the_region_cascade_fills_each_level(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    page.fill("#f-name", "天河客户")
    page.select_option("#f-region", "440000")
    page.wait_for_selector("#f-region-2 option[value='440100']", state="attached")
    page.select_option("#f-region-2", "440100")
    page.wait_for_selector("#f-region-3 option[value='440106']", state="attached")
    page.select_option("#f-region-3", "440106")
    shot(page, "region-cascade")
    page.select_option("#f-region", "110000")  # another province empties the lower levels
    page.wait_for_selector("#f-region-2 option[value='110101']", state="attached")
    assert page.locator("#f-region-3").is_disabled()
    page.select_option("#f-region", "440000")
    page.wait_for_selector("#f-region-2 option[value='440300']", state="attached")
    page.select_option("#f-region-2", "440300")
    page.wait_for_selector("#f-region-3 option[value='440305']", state="attached")
    page.select_option("#f-region-3", "440305")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/customer/\d+$"))
    assert page.locator("[data-field=region]").inner_text() == "广东省 / 深圳市 / 南山区"


def test_a_dependent_picklist_follows_its_controlling_field(page):
    page.goto(page.base + "/o/customer/new?business_type=standard")
    offered = "#f-sub_industry option:not([hidden])"
    assert page.locator(offered).count() == 1  # only "— choose —" before an industry
    page.select_option("#f-industry", "finance")
    assert page.locator(offered).all_inner_texts()[1:] == ["银行", "保险", "证券"]
    page.select_option("#f-sub_industry", "banking")
    page.select_option("#f-industry", "it")
    assert page.input_value("#f-sub_industry") == ""  # banking is not an IT sub-industry
    assert "软件开发" in page.locator(offered).all_inner_texts()


def test_a_filtered_lookup_offers_the_chosen_customers_records(page):
    page.goto(page.base + "/o/quote/new")
    choose(page, "#f-customer", "星河")
    page.fill("#f-opportunity", "星河")
    page.wait_for_selector(".lookup-choice")
    assert page.locator(".lookup-choice").all_inner_texts() == ["星河机房扩容"]
    page.fill("#f-opportunity", "远山")
    page.wait_for_timeout(600)
    assert page.locator(".lookup-choice").count() == 0


def test_the_quote_form_and_detail_fit_a_phone_screen(chromium, server):  # noqa: F811
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.base = server
    sign_in(page)
    page.goto(server + "/o/quote/new")
    page.click("[data-add-line]")
    page.click("[data-add-line]")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the quote form is {overflow}px wider than the screen"
    shot(page, "phone-quote-form")
    page.goto(server + "/o/quote")
    page.locator("a.record-link").first.click()
    page.wait_for_url(re.compile(r".*/o/quote/\d+.*"))
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the quote detail is {overflow}px wider than the screen"
    context.close()
