"""Refusals read in Chinese in a real headless Chromium (see tests/test_browser.py): a
Chinese admin is refused a field name by the name rules, and a stage move by its
requirements, and sees each in Chinese with no English left in it. Screenshots in
test-artifacts/screenshots/refused-zh-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, demo_company, serve, shot  # noqa: F401 - a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    """The demo company, a Chinese admin and an opportunity with no contact yet."""
    made: dict = {}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        users.create_user(session, "admin", PASSWORD, is_admin=True, display_name="管理员")
        registry = metastore.load_registry(session)
        zhang = users.load_actor(session, ids["zhang"])
        customer = records.create(session, registry, "customer",
                                  {"name": "远航科技", "owner": ids["zhang"]}, actor=zhang)["id"]
        made["deal"] = records.create(session, registry, "opportunity", {
            "name": "待确认的商机", "customer": customer, "business_type": "standard",
            "owner": ids["zhang"], "amount": 50000}, actor=zhang)["id"]

    with serve(tmp_path_factory.mktemp("refused-zh"), fill,
               templates=(SAMPLE, SAMPLE_FLOWS)) as (url, _engine):
        yield {"url": url, **made}


def admin_page(chromium, office):  # noqa: F811
    return signed_in_page(chromium, office["url"], "admin", password=PASSWORD)


def refused_field_name(page, base: str, name: str) -> str:
    """The field form's text after adding a text field called ``name``."""
    page.goto(f"{base}/admin/objects/customer/fields/new?type=text")
    page.fill("#name", name)
    page.fill("#label_zh", "备注二")
    page.fill("#label_en", "Remark 2")
    page.click("#save-field")
    page.wait_for_selector(".invalid-feedback, .alert-danger")
    return page.locator("main").inner_text()


@pytest.mark.parametrize(("name", "chinese", "english"), [
    ("select", "“select”是 SQL 保留字", "is an SQL reserved word"),
    ("BadName", "'BadName' 不符合格式", "does not match"),
])
def test_a_field_name_refused_by_the_name_rules_reads_in_chinese(
        chromium, office, name, chinese, english):  # noqa: F811
    context, page = admin_page(chromium, office)
    text = refused_field_name(page, office["url"], name)
    shot(page, f"refused-zh-field-{name.lower()}")
    assert chinese in text
    assert english not in text
    context.close()


def test_a_stage_move_refused_by_its_requirements_reads_in_chinese(chromium, office):  # noqa: F811
    context, page = admin_page(chromium, office)
    page.goto(f"{office['url']}/o/opportunity/{office['deal']}")
    page.click("#stage-next")
    page.wait_for_selector("main > .alert-danger")
    text = page.locator("main > .alert-danger").first.inner_text()
    shot(page, "refused-zh-stage")
    assert "确认关键决策人" in text
    assert not re.search(r"is not done|must be filled|stage work", text)
    context.close()
