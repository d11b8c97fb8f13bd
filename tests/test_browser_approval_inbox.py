"""The approval inbox and an approval's page in a real headless Chromium: the manager
rejects from the inbox with a reason, which the server stores on the timeline; the
hand-over and 加签 lists do not offer the submitter. Screenshots in
test-artifacts/screenshots/approval-inbox-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.access import users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.flows import approvals, notifications
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS

DEALS = ("华东智慧园区项目", "苏州工业园二期")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def office(request, tmp_path_factory) -> Iterator[dict]:
    """The demo company; zhang's two large opportunities, both waiting for wang."""
    made: dict = {"approvals": {}}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        made["ids"] = ids
        registry = metastore.load_registry(session)
        zhang = users.load_actor(session, ids["zhang"])
        for name in DEALS:
            customer = records.create(session, registry, "customer",
                                      {"name": f"{name}客户", "owner": ids["zhang"]},
                                      actor=SYSTEM)
            record = records.create(session, registry, "opportunity", {
                "name": name, "customer": customer["id"], "amount": 800000,
                "business_type": "standard", "owner": ids["zhang"]}, actor=SYSTEM)
            made["approvals"][name] = approvals.submit(
                session, registry, "opportunity", record["id"], "large_opportunity",
                actor=zhang)

    with serve(tmp_path_factory.mktemp("approval-inbox"), fill,
               templates=(SAMPLE, SAMPLE_FLOWS), backend=request.param) as (url, engine):
        yield {"url": url, "engine": engine, **made}


def test_a_quick_reject_from_the_inbox_stores_its_reason(chromium, office):  # noqa: F811
    approval_id = office["approvals"][DEALS[0]]
    context, page = signed_in_page(chromium, office["url"], "wang", accept_dialogs=True)
    page.goto(office["url"] + "/approvals")
    row = page.locator(f"tr.approval-row[data-approval='{approval_id}']")
    row.locator("textarea.quick-comment").fill("客户预算未批，下季度再报")
    shot(page, "approval-inbox-reason")
    row.locator("button.quick-reject").click()
    page.wait_for_selector(f"tr.approval-row[data-approval='{approval_id}']", state="detached")
    assert page.locator(f"tr.approval-row[data-approval='{office['approvals'][DEALS[1]]}']"
                        ).count() == 1
    context.close()

    with Session(office["engine"]) as s:
        assert approvals.get(s, approval_id)["status"] == "rejected"
        event = next(e for e in approvals.timeline(s, [approval_id]) if e["action"] == "reject")
        assert (event["actor_id"], event["comment"]) == (office["ids"]["wang"],
                                                         "客户预算未批，下季度再报")
        waiting = [n for n in notifications.listing(s, office["ids"]["wang"], unread_only=True)
                   if n["approval_id"] == approval_id]
    assert waiting == []  # the request to decide is closed


def test_the_hand_over_and_add_approver_lists_do_not_offer_the_submitter(chromium, office):  # noqa: F811
    approval_id = office["approvals"][DEALS[1]]
    context, page = signed_in_page(chromium, office["url"], "wang")
    page.goto(f"{office['url']}/approvals/{approval_id}")
    for select in ("#hand-over-user", "#add-approver-user"):
        offered = page.locator(f"{select} option").all_text_contents()  # in a closed <details>
        assert "李娜" in offered and "张伟" not in offered and "王经理" not in offered
    context.close()
