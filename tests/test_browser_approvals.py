"""The approval of a large opportunity in a real headless Chromium: the rep submits it from
its page, the manager approves it from the inbox with a comment, finance approves, and
the rep sees it approved in the record's timeline. Screenshots in
test-artifacts/screenshots/approval-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.actor import SYSTEM
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS

DEAL = "华东智慧园区项目"


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    """The demo company with one large opportunity of zhang's, served over HTTP."""
    made: dict = {}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        registry = metastore.load_registry(session)
        customer = records.create(session, registry, "customer",
                                  {"name": "远航科技", "owner": ids["zhang"]}, actor=SYSTEM)
        made["record"] = records.create(session, registry, "opportunity", {
            "name": DEAL, "customer": customer["id"], "amount": 800000,
            "business_type": "standard", "owner": ids["zhang"]}, actor=SYSTEM)["id"]

    with serve(tmp_path_factory.mktemp("approvals"), fill,
               templates=(SAMPLE, SAMPLE_FLOWS)) as (url, _engine):
        yield {"url": url, **made}


def open_as(chromium, office, username: str, width: int = 1280):  # noqa: F811
    return signed_in_page(chromium, office["url"], username, width=width, height=860, accept_dialogs=True)


def test_a_large_opportunity_is_submitted_approved_twice_and_shown_approved(chromium, office):  # noqa: F811
    record_url = f"{office['url']}/o/opportunity/{office['record']}"

    context, page = open_as(chromium, office, "zhang")
    page.goto(record_url)
    page.fill("#approval-submit-comment", "客户预算已确认，请审批")
    page.click("#approval-submit")
    page.wait_for_selector("#approval-panel[data-status=pending]")
    assert page.locator("#edit-record").count() == 0  # locked while pending
    assert "王经理" in page.locator("#approval-waiting-on").inner_text()
    shot(page, "approval-submitted")
    context.close()

    context, page = open_as(chromium, office, "wang")
    page.goto(office["url"] + "/approvals")
    row = page.locator("tr.approval-row", has_text=DEAL)
    assert row.count() == 1
    shot(page, "approval-inbox")
    row.locator("a.approval-title").click()
    page.wait_for_url(re.compile(r".*/approvals/\d+$"))
    assert page.locator("#approval-record [data-field=amount]").inner_text().strip()
    page.fill("#approval-comment", "同意，注意回款节奏")
    shot(page, "approval-page")
    page.click("#approval-approve")
    page.wait_for_selector(".approval-event[data-action=approve]")
    assert page.locator("#approval-actions").count() == 0  # nothing left for wang to do
    context.close()

    context, page = open_as(chromium, office, "qian")
    page.goto(office["url"] + "/approvals")
    page.locator("tr.approval-row", has_text=DEAL).locator("a.approval-title").click()
    page.wait_for_url(re.compile(r".*/approvals/\d+$"))
    page.click("#approval-approve")
    page.wait_for_selector("#approval-header[data-status=approved]")
    context.close()

    context, page = open_as(chromium, office, "zhang")
    page.goto(record_url)
    assert page.locator("#approval-panel").get_attribute("data-status") == "approved"
    timeline = page.locator("#approval-panel .approval-timeline")
    assert timeline.locator(".approval-event[data-action=approved]").count() == 1
    assert "同意，注意回款节奏" in timeline.inner_text()
    assert page.locator("#edit-record").count() == 1  # unlocked again
    assert not page.locator("#approval-submit-form").is_visible()  # approved: folded away
    assert page.locator("[data-field=approval_status]").inner_text() == "已通过"
    shot(page, "approval-approved")
    page.goto(office["url"] + "/approvals?box=submitted")
    assert page.locator("tr.approval-row .approval-status").first.get_attribute(
        "data-status") == "approved"
    context.close()

    context, page = open_as(chromium, office, "wang", width=390)
    page.goto(office["url"] + "/approvals?box=processed")
    item = page.locator(".approval-item", has_text=DEAL)  # cards, not the table
    assert item.is_visible() and not page.locator("table.approval-list").is_visible()
    assert item.locator(".approval-status").get_attribute("data-status") == "approved"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "approval-inbox-mobile")
    context.close()
