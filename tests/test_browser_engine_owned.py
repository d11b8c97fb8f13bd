"""Engine-owned fields in a real headless Chromium: a rep's new-opportunity form shows the
stage, win rate, approval status and number as text, offers no input for them, and what
is stored is the engine's (the first stage at its win rate, no approval status). A
screenshot in test-artifacts/screenshots/engine-owned-new.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.access import users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def office(request, tmp_path_factory) -> Iterator[dict]:
    """The demo company with the sample flows and a customer of zhang's, over HTTP."""
    made: dict = {}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        registry = metastore.load_registry(session)
        zhang = users.load_actor(session, ids["zhang"])
        records.create(session, registry, "customer", {"name": "远航科技"}, actor=zhang)

    with serve(tmp_path_factory.mktemp("owned"), fill,
               templates=(SAMPLE, SAMPLE_FLOWS), backend=request.param) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def test_the_new_opportunity_form_offers_no_input_for_engine_owned_fields(chromium,  # noqa: F811
                                                                          office):
    context, page = signed_in_page(chromium, office["url"], "zhang")
    page.goto(f"{office['url']}/o/opportunity/new?business_type=standard")
    form = page.locator("#record-form")
    for name in ("stage", "win_rate", "approval_status", "code"):
        assert form.locator(f'[name="{name}"]').count() == 0, name
        assert page.locator(f"#f-{name}").get_attribute("readonly") is not None, name
    assert page.locator("#f-stage").input_value() == "验证客户"
    assert page.locator("#f-win_rate").input_value() == "10.00%"
    page.fill("#f-name", "智慧园区一期")
    page.fill("#f-customer", "远航")
    page.locator(".lookup-choice").first.click()
    page.fill("#f-amount", "600000")
    shot(page, "engine-owned-new")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/o/opportunity/\d+$"))
    record_id = int(page.url.rsplit("/", 1)[1])
    context.close()
    with Session(office["engine"]) as s:
        stored = records.get(s, metastore.load_registry(s), "opportunity", record_id,
                             actor=SYSTEM)
    assert (stored["stage"], float(stored["win_rate"]), stored["approval_status"]) == \
        ("qualify", 10, None)
    assert stored["code"].startswith("SJ-")
