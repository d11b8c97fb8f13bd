"""Admin → Business settings pressed in a real headless Chromium (see tests/test_browser.py):
saving a value and going back to the default change what the server stores and what the
next registry reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_browser import PASSWORD, chromium, serve  # noqa: F401 - a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.systables import meta_document


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    def fill(session: Session) -> None:
        users.create_user(session, "admin", PASSWORD, is_admin=True, display_name="管理员")

    with serve(tmp_path_factory.mktemp("settings"), fill) as (url, engine):
        yield {"url": url, "engine": engine}


def stored(office) -> tuple[int, dict | None]:
    """The registry's value of contract_expiry_days, and the admin's overlay."""
    engine = office["engine"]
    with Session(engine) as session:
        value = metastore.load_registry(session).setting("contract_expiry_days")
        overlay = session.execute(sa.select(meta_document.c.content).where(
            meta_document.c.kind == "setting", meta_document.c.layer == "overlay",
            meta_document.c.doc_key == "contract_expiry_days")).scalar()
    return value, overlay


def test_an_admin_saves_a_setting_and_goes_back_to_the_default(chromium, office):  # noqa: F811
    context, page = signed_in_page(chromium, office["url"], "admin", password=PASSWORD)
    try:
        page.goto(office["url"] + "/admin/settings")
        page.fill("#setting-contract_expiry_days", "10")
        page.click("#save-settings")
        page.wait_for_selector(".alert-success")
        assert "业务参数已保存" in page.locator(".alert-success").inner_text()
        assert stored(office) == (10, {"value": 10})
        page.fill("#setting-contract_expiry_days", "400")
        page.click("#save-settings")
        assert "取值不能大于 365" in page.locator("#problems").inner_text()
        assert stored(office) == (10, {"value": 10})
        page.goto(office["url"] + "/admin/settings")
        page.click("[data-setting='contract_expiry_days'] button[name='reset']")
        page.wait_for_selector(".alert-success")
        assert stored(office) == (7, None)
        assert page.input_value("#setting-contract_expiry_days") == "7"
    finally:
        context.close()
