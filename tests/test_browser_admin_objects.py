"""The object manager in a real headless Chromium (see tests/test_browser.py): an admin
builds a new object and its fields, an employee uses it at once, and a required field
added afterwards reaches the existing record, all on one running server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, serve, shot  # noqa: F401 - a fixture

from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

EMPLOYEE_PASSWORD = "employee-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    def fill(session: Session) -> None:
        users.create_user(session, "admin", PASSWORD, is_admin=True, display_name="管理员")
        employee = users.create_user(session, "wang", EMPLOYEE_PASSWORD, display_name="王工")
        records.create(session, metastore.load_registry(session), "product",  # theirs: the
                       {"name": "数控车床", "price": "150000"},  # employee role reads its own
                       actor=users.load_actor(session, employee))

    with serve(tmp_path_factory.mktemp("object-manager"), fill) as (url, _engine):
        yield url


def signed_in_page(chromium, server, username: str, password: str):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(server + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/o/.*"))
    return context, page


def add_field(page, field_type: str, name: str, zh: str, en: str, **settings) -> None:
    page.click("#new-field")
    page.click(f"#field-types [data-type={field_type}]")
    page.fill("#name", name)
    page.fill("#label_zh", zh)
    page.fill("#label_en", en)
    for selector, value in settings.items():
        target = page.locator(f"#{selector}")
        if target.evaluate("e => e.tagName") == "SELECT":
            target.select_option(value)
        elif target.get_attribute("type") == "checkbox":
            target.check()
        else:
            target.fill(value)
    page.click("#save-field")
    page.wait_for_selector(f"#field-{name}")


def test_an_admin_builds_an_object_that_an_employee_uses_at_once(chromium, server):  # noqa: F811
    admin_context, admin = signed_in_page(chromium, server, "admin", PASSWORD)
    admin.goto(server + "/admin/objects")
    admin.click("#new-object")
    admin.fill("#object", "equipment")
    admin.fill("#label_zh", "设备")
    admin.fill("#label_en", "Equipment")
    admin.fill("#icon", "tools")
    admin.fill("#title_name", "name")
    admin.fill("#title_label_zh", "设备名称")
    admin.fill("#title_label_en", "Name")
    admin.check("#feature_owner")
    admin.click("#create-object")
    admin.wait_for_url(re.compile(r".*/admin/objects/equipment$"))

    add_field(admin, "text", "serial_no", "序列号", "Serial number", unique="1")
    add_field(admin, "select", "status", "状态", "Status",
              options="in_use|In use|在用\nidle|Idle|闲置\nscrapped|Scrapped|报废")
    add_field(admin, "date", "purchased", "购买日期", "Purchased")
    add_field(admin, "decimal", "price", "价格", "Price", scale="2")
    add_field(admin, "lookup", "product", "产品", "Product", target="product")
    order = admin.locator("#field-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.field)")
    assert order == ["name", "serial_no", "status", "purchased", "price", "product"]
    shot(admin, "admin-object-fields")

    employee_context, employee = signed_in_page(chromium, server, "wang", EMPLOYEE_PASSWORD)
    employee.goto(server + "/o/equipment/new")
    employee.fill("#f-name", "一号车床")
    employee.fill("#f-serial_no", "EQ-0001")
    employee.select_option("#f-status", "in_use")
    employee.fill("#f-purchased", "2026-03-01")
    employee.fill("#f-price", "12345.5")
    employee.fill("#f-product", "数控")
    employee.locator(".lookup-choice").first.click()
    employee.click("#save")
    employee.wait_for_url(re.compile(r".*/o/equipment/\d+$"))
    record_url = employee.url
    assert employee.locator("[data-field=status]").inner_text() == "在用"
    employee.goto(server + "/o/equipment")
    row = employee.locator("table.record-list tbody tr", has_text="一号车床")
    assert row.count() == 1 and "EQ-0001" in row.inner_text()

    admin.goto(server + "/admin/objects/equipment")
    add_field(admin, "text", "site", "存放地点", "Site", required="1", default="总部仓库")
    shot(admin, "admin-object-required-field")

    employee.goto(record_url)
    assert employee.locator("[data-field=site]").inner_text() == "总部仓库"
    shot(employee, "equipment-record-with-default")
    employee_context.close()
    admin_context.close()
