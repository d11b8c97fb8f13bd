"""The stage path and the kanban board in a real headless Chromium: a rep ticks stage work,
is refused a move with what is missing listed, moves on, completes a key event with its
document, and drags cards on the kanban board (refused, then accepted). Screenshots in
test-artifacts/screenshots/stage-*.png and kanban-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from test_browser import chromium, demo_company, serve, shot  # noqa: F401 - chromium is a fixture
from test_browser import open_as as signed_in_page

from metacrm.engine.access import users
from metacrm.engine.flows import stages
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> Iterator[dict]:
    """The demo company; zhang's opportunities in the standard process, served over HTTP."""
    made: dict = {}

    def fill(session: Session) -> None:
        ids = demo_company(session)
        registry = metastore.load_registry(session)
        zhang = users.load_actor(session, ids["zhang"])
        customer = records.create(session, registry, "customer",
                                  {"name": "远航科技", "owner": ids["zhang"]}, actor=zhang)["id"]
        contact = records.create(session, registry, "contact",
                                 {"name": "陈总", "customer": customer, "owner": ids["zhang"]},
                                 actor=zhang)["id"]

        def deal(name: str, **values) -> int:  # placed in a later stage by the stage engine
            return records.create(session, registry, "opportunity", {
                "name": name, "customer": customer, "business_type": "standard",
                "owner": ids["zhang"], **values}, actor=zhang,
                by=stages.OWNER if "stage" in values else records.RECORD)["id"]

        made["path"] = deal("智慧园区一期", contact=contact, amount=380000)
        made["event"] = deal("仓储系统升级", stage="proposal", contact=contact,
                             amount=260000, close_date="2030-09-30")
        made["phone"] = deal("门店数字化改造", stage="needs", contact=contact, amount=120000)
        made["refused"] = deal("待确认的商机", amount=50000)
        made["ready"] = deal("已确认决策人的商机", contact=contact, amount=90000)
        stages.tick_work(session, registry, "opportunity", made["ready"], "confirm_contact",
                         actor=zhang)
        made["lose"] = deal("预算取消的商机", amount=30000)

    with serve(tmp_path_factory.mktemp("stages"), fill,
               templates=(SAMPLE, SAMPLE_FLOWS)) as (url, _engine):
        yield {"url": url, **made}


def open_as(chromium, office, username: str, width: int = 1280, height: int = 900):  # noqa: F811
    return signed_in_page(chromium, office["url"], username, width=width, height=height)


def flash(page) -> str:
    return page.locator("main > .alert").first.inner_text().strip()


def test_the_path_bar_ticks_work_refuses_a_move_and_moves_on(chromium, office):  # noqa: F811
    context, page = open_as(chromium, office, "zhang")
    page.goto(f"{office['url']}/o/opportunity/{office['path']}")
    assert page.locator(".stage-step.is-current").get_attribute("data-stage") == "qualify"
    shot(page, "stage-path")

    page.click("#stage-next")
    page.wait_for_selector("main > .alert-danger")
    assert "确认关键决策人" in flash(page)  # the work not ticked, named in the refusal
    assert page.locator("#stage-missing li").evaluate_all(
        "items => items.map(i => i.dataset.kind + ':' + i.dataset.name)") == \
        ["work:confirm_contact"]
    shot(page, "stage-refused")

    page.click("#work-confirm_contact button[type=submit]")
    page.wait_for_selector("#work-confirm_contact.is-checked")
    assert page.locator("#stage-ready").is_visible()
    page.click("#stage-next")
    page.wait_for_selector("main > .alert-success")
    assert page.locator(".stage-step.is-current").get_attribute("data-stage") == "needs"
    assert page.locator(".stage-step.is-done").count() == 1
    assert page.locator("#win-rate").inner_text() == "30%"
    page.click("#stage-history-toggle")
    page.wait_for_selector("#stage-history.show")
    assert page.locator(".stage-history tbody tr").count() == 2
    shot(page, "stage-moved")
    context.close()


def test_a_key_event_is_done_with_its_document(chromium, office, tmp_path):  # noqa: F811
    context, page = open_as(chromium, office, "zhang")
    page.goto(f"{office['url']}/o/opportunity/{office['event']}")
    assert page.locator("#stage-missing li[data-kind=event]").count() == 1
    document = tmp_path / "方案报价单.pdf"
    document.write_bytes(b"%PDF-1.4 quotation")
    page.set_input_files("#event-file-proposal_sent", str(document))
    page.click("#event-proposal_sent .event-done")
    page.wait_for_selector("#event-proposal_sent.is-checked")
    link = page.locator("#event-proposal_sent a.event-document")
    assert link.inner_text().strip() == "方案报价单.pdf"
    assert page.locator("#win-rate").inner_text() == "60%"
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "方案报价单.pdf"
    shot(page, "stage-key-event")
    context.close()


def test_the_path_bar_fits_a_phone_screen(chromium, office):  # noqa: F811
    context, page = open_as(chromium, office, "zhang", width=390, height=844)
    page.goto(f"{office['url']}/o/opportunity/{office['phone']}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the screen"
    current = page.locator(".stage-step.is-current")
    box, path = current.bounding_box(), page.locator(".stage-path").bounding_box()
    assert box["x"] >= path["x"] - 1 and box["x"] + box["width"] <= path["x"] + path["width"] + 1
    shot(page, "stage-path-phone")
    context.close()


def test_dragging_a_card_on_the_kanban_board(chromium, office):  # noqa: F811
    context, page = open_as(chromium, office, "zhang", width=1600)
    page.goto(f"{office['url']}/o/opportunity/kanban?process=opportunity_standard")
    qualify = page.locator(".kanban-column[data-stage=qualify]")
    needs = page.locator(".kanban-column[data-stage=needs]")
    before = int(qualify.locator(".kanban-count").inner_text())
    shot(page, "kanban")

    refused = page.locator(f".kanban-card[data-id='{office['refused']}']")
    refused.drag_to(needs.locator(".kanban-cards"))
    page.wait_for_selector("#kanban-alerts .alert-danger")
    missing = page.locator("#kanban-alerts .kanban-missing li").evaluate_all(
        "items => items.map(i => i.dataset.kind + ':' + i.dataset.name)")
    assert missing == ["work:confirm_contact", "field:contact"]
    assert qualify.locator(f".kanban-card[data-id='{office['refused']}']").count() == 1
    assert int(qualify.locator(".kanban-count").inner_text()) == before
    shot(page, "kanban-refused")

    ready = page.locator(f".kanban-card[data-id='{office['ready']}']")
    ready.drag_to(needs.locator(".kanban-cards"))
    page.wait_for_selector("#kanban-alerts .alert-success")
    assert needs.locator(f".kanban-card[data-id='{office['ready']}']").count() == 1
    assert int(qualify.locator(".kanban-count").inner_text()) == before - 1
    page.reload()
    assert page.locator(f".kanban-column[data-stage=needs] .kanban-card[data-id='{office['ready']}']"
                        ).count() == 1
    shot(page, "kanban-moved")
    context.close()


def test_dropping_a_card_on_lost_asks_for_the_reason(chromium, office):  # noqa: F811
    context, page = open_as(chromium, office, "zhang", width=1600)
    page.goto(f"{office['url']}/o/opportunity/kanban?process=opportunity_standard")
    lost = page.locator(".kanban-column[data-stage=lost]")
    page.locator(f".kanban-card[data-id='{office['lose']}']").drag_to(
        lost.locator(".kanban-cards"))
    page.wait_for_selector("#lost-modal.show")
    page.select_option("#kanban-lost-reason", "budget")
    page.wait_for_timeout(400)  # the modal's fade-in, for the screenshot
    shot(page, "kanban-lost-reason")
    page.click("#kanban-lost-submit")
    page.wait_for_selector("#kanban-alerts .alert-success")
    assert lost.locator(f".kanban-card[data-id='{office['lose']}']").count() == 1
    assert lost.locator(".kanban-count").inner_text() == "1"
    context.close()
