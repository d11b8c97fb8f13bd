"""The stage path on a record's page, the kanban board and key-event documents, over HTTP.

The demo company (``people``): 张伟 ``zhang`` and 李娜 ``li`` are reps who see their own
records, 王经理 ``wang`` manages them and sees the department's, 钱芳 ``qian`` (finance)
reads everything and edits nothing. Opportunities follow the sample's processes: the
standard one (business type ``standard``) and the project one with a tender approval.
"""

from __future__ import annotations

import html as html_text
import io
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm.engine.actor import SYSTEM
from metacrm.engine.flows import stages
from metacrm.engine.systables import sys_approval
from metacrm.engine.writing import records

from conftest import Browser, signed_in

PASSWORD = "demo-password"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


class Sales:
    """Opportunities of the demo company, and its people signed in (in English)."""

    def __init__(self, app, engine, registry, people):
        self.app, self.engine, self.registry, self.people = app, engine, registry, people
        # 张伟's customer and contact: a lookup offers only records its user may read.
        zhang = people["zhang"].user_id
        with Session(engine) as s, s.begin():
            self.customer = records.create(s, registry, "customer", {
                "name": "远航科技", "owner": zhang}, actor=SYSTEM)["id"]
            self.contact = records.create(s, registry, "contact", {
                "name": "张三", "customer": self.customer, "owner": zhang}, actor=SYSTEM)["id"]

    def opportunity(self, owner: str = "zhang", business_type: str = "standard",
                    **values) -> int:
        with Session(self.engine) as s, s.begin():
            row = records.create(s, self.registry, "opportunity", {
                "name": values.pop("name", f"{owner}的商机"), "customer": self.customer,
                "business_type": business_type, "owner": self.people[owner].user_id,
                **values}, actor=SYSTEM,
                by=stages.OWNER if "stage" in values else records.RECORD)
        return row["id"]

    def ready(self, **values) -> dict:
        """The values every stage up to negotiation asks for."""
        return {"contact": self.contact, "amount": "120000", "close_date": "2030-06-30",
                **values}

    def record(self, record_id: int) -> dict:
        with Session(self.engine) as s:
            return records.get(s, self.registry, "opportunity", record_id, actor=SYSTEM)

    def browser(self, username: str) -> Browser:
        browser = signed_in(self.app, username, "admin-password" if username == "admin"
                            else PASSWORD)
        browser.post("/language", {"language": "en", "next": "/"})
        return browser


@pytest.fixture
def sales(app, engine, registry, people) -> Sales:
    return Sales(app, engine, registry, people)


def url(record_id: int, tail: str = "") -> str:
    return f"/o/opportunity/{record_id}{tail}"


def move(browser: Browser, record_id: int, to: str, **form):
    return browser.post(url(record_id, "/stage"), {"to": to, **form}, follow_redirects=True)


def tick(browser: Browser, record_id: int, item: str, done: str = "1"):
    return browser.post(url(record_id, "/stage/work"), {"item": item, "done": done})


def missing_items(html: str) -> list[tuple[str, str]]:
    """The path bar's list of what is missing to move on: (kind, name) each."""
    box = re.search(r'<ul class="stage-missing[^"]*" id="stage-missing">(.*?)</ul>', html, re.S)
    return re.findall(r'data-kind="(\w+)" data-name="(\w+)"', box.group(1)) if box else []


def flash_of(html: str) -> str:
    found = re.search(r'<div class="alert alert-(\w+) alert-dismissible[^>]*>(.*?)<button',
                      html, re.S)
    return f"{found.group(1)}: {html_text.unescape(found.group(2).strip())}" if found else ""


# -- the path bar -----------------------------------------------------------------------------
def test_the_detail_page_shows_the_stages_and_what_is_missing_to_move_on(sales):
    record_id = sales.opportunity()
    html = sales.browser("zhang").text(url(record_id))
    assert 'id="stage-path" data-process="opportunity_standard" data-stage="qualify"' in html
    steps = re.findall(r'<li class="stage-step ([\w -]+)" data-stage="(\w+)"', html)
    assert [(c.split()[0], s) for c, s in steps] == [
        ("is-current", "qualify"), ("is-todo", "needs"), ("is-todo", "proposal"),
        ("is-todo", "negotiation"), ("is-todo", "closed")]
    assert 'id="win-rate">10%<' in html
    assert missing_items(html) == [("work", "confirm_contact"), ("field", "contact")]
    assert "Tick the stage work: Confirm the decision maker" in html
    assert f'href="/o/opportunity/{record_id}/edit#f-contact"' in html


def test_a_record_without_a_stage_process_has_no_path_bar(sales):
    html = sales.browser("admin").text(f"/o/customer/{sales.customer}")
    assert 'id="stage-path"' not in html


def test_ticking_stage_work_is_shown_with_who_ticked_it(sales):
    record_id = sales.opportunity()
    zhang = sales.browser("zhang")
    assert tick(zhang, record_id, "confirm_contact").status_code == 302
    html = zhang.text(url(record_id))
    assert re.search(r'class="[^"]*is-checked" id="work-confirm_contact"', html)
    assert "Done by 张伟" in html
    assert missing_items(html) == [("field", "contact")]
    tick(zhang, record_id, "confirm_contact", done="0")
    assert ("work", "confirm_contact") in missing_items(zhang.text(url(record_id)))


def test_a_move_is_refused_while_stage_work_is_not_ticked(sales):
    record_id = sales.opportunity(contact=sales.contact)
    html = move(sales.browser("zhang"), record_id, "needs").get_data(as_text=True)
    assert flash_of(html) == ("danger: The record cannot move yet: Tick the stage work: "
                              "Confirm the decision maker")
    assert sales.record(record_id)["stage"] == "qualify"


def test_a_move_is_refused_while_a_required_field_of_the_next_stage_is_empty(sales):
    record_id = sales.opportunity()
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "confirm_contact")
    html = move(zhang, record_id, "needs").get_data(as_text=True)
    assert flash_of(html) == ("danger: The record cannot move yet: "
                              "Fill in Contact (needed to enter Needs analysis)")
    assert missing_items(html) == [("field", "contact")]
    assert sales.record(record_id)["stage"] == "qualify"


def test_a_required_field_given_with_the_move_lets_it_through(sales):
    record_id = sales.opportunity()
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "confirm_contact")
    html = move(zhang, record_id, "needs", contact=str(sales.contact)).get_data(as_text=True)
    assert flash_of(html) == "success: Moved to Needs analysis."
    row = sales.record(record_id)
    assert (row["stage"], row["contact"], float(row["win_rate"])) == ("needs", sales.contact, 30)


def test_a_move_over_several_stages_lists_every_missing_item(sales):
    record_id = sales.opportunity()
    html = move(sales.browser("zhang"), record_id, "proposal").get_data(as_text=True)
    assert flash_of(html) == (
        "danger: The record cannot move yet: Tick the stage work: Confirm the decision maker; "
        "Move through Needs analysis first: it has its own work, key events or approval; "
        "Fill in Contact (needed to enter Needs analysis); Fill in Amount (needed to enter "
        "Proposal); Fill in Expected close date (needed to enter Proposal)")


def test_a_move_is_refused_while_a_required_key_event_is_not_done(sales):
    record_id = sales.opportunity(stage="needs", **sales.ready())
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "needs_survey")
    html = move(zhang, record_id, "proposal").get_data(as_text=True)
    assert flash_of(html) == ("danger: The record cannot move yet: "
                              "Complete the key event: Product demo held")
    zhang.post(url(record_id, "/stage/event"), {"event": "demo", "done": "1"})
    assert missing_items(zhang.text(url(record_id))) == []
    html = move(zhang, record_id, "proposal").get_data(as_text=True)
    assert flash_of(html) == "success: Moved to Proposal."


def test_a_key_event_done_adds_its_share_to_the_win_rate(sales):
    record_id = sales.opportunity(stage="needs", **sales.ready())
    zhang = sales.browser("zhang")
    zhang.post(url(record_id, "/stage/event"), {"event": "demo", "done": "1"})
    assert float(sales.record(record_id)["win_rate"]) == 40
    assert 'id="win-rate">40%<' in zhang.text(url(record_id))


def test_a_key_event_needing_a_document_is_refused_without_a_file(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    response = zhang.post(url(record_id, "/stage/event"), {"event": "proposal_sent"},
                          follow_redirects=True)
    assert flash_of(response.get_data(as_text=True)) == \
        "danger: Attach the document to complete Proposal sent"
    html = move(zhang, record_id, "negotiation").get_data(as_text=True)
    assert flash_of(html) == ("danger: The record cannot move yet: "
                              "Complete the key event: Proposal sent")


def test_a_key_event_with_its_document_is_done_and_the_document_can_be_downloaded(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    response = zhang.post(url(record_id, "/stage/event"), {
        "event": "proposal_sent", "file": (io.BytesIO(b"%PDF-1.4 proposal"), "方案 v1.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    html = zhang.text(url(record_id))
    link = re.search(r'<a class="event-document" href="(/attachments/\d+)">', html).group(1)
    download = zhang.get(link)
    assert download.status_code == 200
    assert download.data == b"%PDF-1.4 proposal"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E6%96%B9%E6%A1%88%20v1.pdf" in download.headers["Content-Disposition"]
    assert flash_of(move(zhang, record_id, "negotiation").get_data(as_text=True)) == \
        "success: Moved to Negotiation."


def test_a_document_is_not_found_for_someone_outside_the_records_scope(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    zhang.post(url(record_id, "/stage/event"), {
        "event": "proposal_sent", "file": (io.BytesIO(b"secret"), "proposal.pdf")},
        content_type="multipart/form-data")
    link = re.search(r'href="(/attachments/\d+)"', zhang.text(url(record_id))).group(1)
    assert sales.browser("li").get(link).status_code == 404
    assert sales.browser("wang").get(link).status_code == 200
    assert zhang.get("/attachments/999999").status_code == 404


def test_a_document_that_a_browser_could_run_is_served_as_plain_bytes(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    zhang.post(url(record_id, "/stage/event"), {
        "event": "proposal_sent",
        "file": (io.BytesIO(b"<script>alert(1)</script>"), 'reports/evil:name?.html', "text/html")},
        content_type="multipart/form-data")
    link = re.search(r'href="(/attachments/\d+)"', zhang.text(url(record_id))).group(1)
    download = zhang.get(link)
    assert download.mimetype == "application/octet-stream"
    assert download.headers["Content-Disposition"] == 'attachment; filename=evil_name_.html'


def test_the_stage_approval_starts_an_approval_instead_of_moving(sales):
    record_id = sales.opportunity(business_type="project", stage="tender", **sales.ready())
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "bid_submitted")
    html = zhang.text(url(record_id))
    assert missing_items(html) == [("event", "bid_document"), ("approval", "tender_review")]
    zhang.post(url(record_id, "/stage/event"), {"event": "bid_document", "file": (
        io.BytesIO(b"bid"), "bid.pdf")}, content_type="multipart/form-data")
    assert 'id="stage-next"><svg' in zhang.text(url(record_id))  # "submit for approval"
    html = move(zhang, record_id, "negotiation").get_data(as_text=True)
    assert re.fullmatch(r"info: The move to Negotiation waits for approval no\. \d+\.",
                        flash_of(html))
    assert sales.record(record_id)["stage"] == "tender"
    with Session(sales.engine) as s:
        pending = s.execute(select(sys_approval).where(
            sys_approval.c.record_id == record_id)).mappings().one()
    assert (pending["status"], pending["flow"], pending["stage_to"]) == \
        ("pending", "tender_review", "negotiation")
    assert 'id="stage-locked"' in html
    assert re.search(r'<fieldset [^>]*id="stage-actions" disabled>', html)


def test_a_locked_record_refuses_a_move_while_its_approval_is_pending(sales):
    record_id = sales.opportunity(business_type="project", stage="tender", **sales.ready())
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "bid_submitted")
    zhang.post(url(record_id, "/stage/event"), {"event": "bid_document", "file": (
        io.BytesIO(b"bid"), "bid.pdf")}, content_type="multipart/form-data")
    move(zhang, record_id, "negotiation")
    response = zhang.post(url(record_id, "/stage"), {"to": "negotiation"},
                          headers={"Accept": "application/json"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "locked"


def test_lost_without_a_reason_is_refused(sales):
    record_id = sales.opportunity()
    html = move(sales.browser("zhang"), record_id, "lost").get_data(as_text=True)
    assert flash_of(html) == ("danger: The record cannot move yet: "
                              "Give the lost reason (Lost reason)")
    assert sales.record(record_id)["stage"] == "qualify"


def test_lost_with_a_reason_closes_the_record(sales):
    record_id = sales.opportunity()
    html = move(sales.browser("zhang"), record_id, "lost", lost_reason="price") \
        .get_data(as_text=True)
    assert flash_of(html) == "success: Moved to Lost."
    row = sales.record(record_id)
    assert (row["stage"], row["lost_reason"], float(row["win_rate"])) == ("lost", "price", 0)
    assert 'class="stage-step is-lost" data-stage="lost"' in html
    assert "This record was lost. Lost reason: Price" in html


def test_won_closes_the_record_at_a_hundred_percent(sales):
    record_id = sales.opportunity(stage="negotiation", **sales.ready())
    zhang = sales.browser("zhang")
    tick(zhang, record_id, "terms_agreed")
    html = move(zhang, record_id, "won").get_data(as_text=True)
    assert flash_of(html) == "success: Moved to Won."
    assert float(sales.record(record_id)["win_rate"]) == 100
    steps = re.findall(r'<li class="stage-step ([\w -]+)" data-stage="(\w+)"', html)
    assert [c.split()[0] for c, _ in steps] == ["is-done"] * 4 + ["is-won"]


def test_moving_back_is_allowed_and_recorded_in_the_history(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    html = move(zhang, record_id, "qualify").get_data(as_text=True)
    assert flash_of(html) == "success: Moved to Qualify."
    with Session(sales.engine) as s:
        entries = stages.history(s, sales.registry.object("opportunity"), record_id)
    assert [(e["stage"], e["from_stage"], e["direction"]) for e in entries] == [
        ("proposal", None, "start"), ("qualify", "proposal", "back")]
    assert entries[0]["left_at"] is not None and entries[1]["left_at"] is None
    assert entries[1]["entered_by"] == sales.people["zhang"].user_id
    rows = re.findall(r'<tr data-stage="(\w+)" data-direction="(\w+)">', html)
    assert rows == [("qualify", "back"), ("proposal", "start")]
    assert "moved back" in html and "张伟" in html


def test_a_move_with_a_stale_version_is_refused(sales):
    record_id = sales.opportunity(stage="proposal", **sales.ready())
    version = sales.record(record_id)["version"]
    zhang = sales.browser("zhang")
    move(zhang, record_id, "needs", version=str(version))
    html = move(zhang, record_id, "qualify", version=str(version)).get_data(as_text=True)
    assert flash_of(html).startswith("danger: Someone else changed this record meanwhile.")
    assert sales.record(record_id)["stage"] == "needs"


def test_someone_who_may_only_read_the_record_sees_the_path_without_controls(sales):
    record_id = sales.opportunity()
    html = sales.browser("qian").text(url(record_id))
    assert 'id="stage-path"' in html
    assert 'id="stage-actions"' not in html and "/stage/work" not in html
    response = sales.browser("qian").post(url(record_id, "/stage"), {"to": "needs"})
    assert response.status_code == 403


def test_the_path_bar_reads_a_fixed_number_of_statements(sales, count_queries):
    once = sales.opportunity(stage="proposal", **sales.ready())
    often = sales.opportunity(stage="proposal", **sales.ready())
    zhang = sales.browser("zhang")
    move(zhang, once, "needs")
    for to in ("needs", "proposal", "qualify", "proposal", "needs"):
        move(zhang, often, to)
    counts = []
    for record_id in (once, often):
        with count_queries() as counter:
            zhang.text(url(record_id))
        counts.append(counter.count)
    assert counts[0] == counts[1]


# -- the kanban board -------------------------------------------------------------------------
def column(html: str, stage: str) -> str:
    pattern = rf'<section class="kanban-column[^"]*" data-stage="{stage}".*?</section>'
    return re.search(pattern, html, re.S).group(0)


def cards(html: str, stage: str) -> list[str]:
    return re.findall(r'class="kanban-card-title" href="[^"]*" draggable="false">([^<]*)<',
                      column(html, stage))


def count_and_sum(html: str, stage: str) -> tuple[int, str]:
    found = column(html, stage)
    return (int(re.search(r'kanban-count"[^>]*>(\d+)<', found).group(1)),
            re.search(r'class="ms-auto kanban-sum"[^>]*>([^<]*)<', found).group(1))


@pytest.fixture
def board(sales) -> Sales:
    """张伟 has two standard opportunities in qualify and one in proposal; 李娜 one in
    qualify; 张伟 one project opportunity."""
    sales.ids = {
        "z1": sales.opportunity(name="张一", amount="100"),
        "z2": sales.opportunity(name="张二", amount="250.50"),
        "z3": sales.opportunity(name="张三", stage="proposal", **sales.ready(amount="1000")),
        "l1": sales.opportunity("li", name="李一", amount="300"),
        "zp": sales.opportunity(name="张项目", business_type="project"),
    }
    return sales


def test_the_kanban_board_has_a_column_per_stage_with_its_count_and_sum(board):
    html = board.browser("wang").text("/o/opportunity/kanban?process=opportunity_standard")
    stages_shown = re.findall(r'<section class="kanban-column[^"]*" data-stage="(\w+)"', html)
    assert stages_shown == ["qualify", "needs", "proposal", "negotiation", "won", "lost"]
    assert count_and_sum(html, "qualify") == (3, "¥650.50")
    assert sorted(cards(html, "qualify")) == ["张一", "张二", "李一"]
    assert count_and_sum(html, "proposal") == (1, "¥1,000.00")
    assert count_and_sum(html, "won") == (0, "¥0.00")
    assert "张项目" not in html


def test_the_kanban_board_shows_only_the_records_in_the_users_scope(board):
    html = board.browser("zhang").text("/o/opportunity/kanban?process=opportunity_standard")
    assert sorted(cards(html, "qualify")) == ["张一", "张二"]
    assert count_and_sum(html, "qualify") == (2, "¥350.50")
    assert "李一" not in html
    html = board.browser("li").text("/o/opportunity/kanban")
    assert 'data-process="opportunity_standard"' in html
    assert cards(html, "qualify") == ["李一"]


def test_the_kanban_board_switches_to_another_process(board):
    html = board.browser("zhang").text("/o/opportunity/kanban?process=opportunity_project")
    stages_shown = re.findall(r'<section class="kanban-column[^"]*" data-stage="(\w+)"', html)
    assert "tender" in stages_shown
    assert cards(html, "qualify") == ["张项目"]
    assert '<option value="opportunity_project" selected>' in html
    assert board.browser("zhang").get("/o/opportunity/kanban?process=nope").status_code == 404


def test_the_kanban_board_keeps_the_lists_search(board):
    html = board.browser("wang").text("/o/opportunity/kanban?process=opportunity_standard&q=张")
    assert sorted(cards(html, "qualify")) == ["张一", "张二"]
    assert count_and_sum(html, "qualify") == (2, "¥350.50")


def test_the_list_links_to_the_kanban_board_only_for_objects_with_processes(board):
    wang = board.browser("wang")
    assert 'id="kanban-link" href="/o/opportunity/kanban' in wang.text("/o/opportunity")
    assert 'id="kanban-link"' not in wang.text("/o/customer")
    assert wang.get("/o/customer/kanban").status_code == 404


def test_cards_the_user_may_not_edit_cannot_be_dragged(board):
    html = board.browser("qian").text("/o/opportunity/kanban?process=opportunity_standard")
    assert sorted(cards(html, "qualify")) == ["张一", "张二", "李一"]
    assert 'draggable="true"' not in html
    html = board.browser("zhang").text("/o/opportunity/kanban?process=opportunity_standard")
    assert html.count('draggable="true"') == 3


def test_a_json_move_from_the_kanban_answers_ok(board):
    zhang = board.browser("zhang")
    zhang.get("/o/opportunity/kanban")
    record_id = board.ids["z1"]
    tick(zhang, record_id, "confirm_contact")
    response = zhang.post(url(record_id, "/stage"), {"to": "needs",
                                                      "contact": str(board.contact)},
                          headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "moved": True, "approval_id": None,
                                   "stage": "needs",
                                   "version": board.record(record_id)["version"]}
    assert board.record(record_id)["stage"] == "needs"


def test_a_json_move_from_the_kanban_is_refused_with_whats_missing(board):
    zhang = board.browser("zhang")
    response = zhang.post(url(board.ids["z1"], "/stage"), {"to": "needs"},
                          headers={"Accept": "application/json"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "stage_refused"
    assert [(m["kind"], m["name"]) for m in error["missing"]] == [
        ("work", "confirm_contact"), ("field", "contact")]
    assert error["missing"][0]["message"] == "Tick the stage work: Confirm the decision maker"
    assert board.record(board.ids["z1"])["stage"] == "qualify"


def test_a_json_move_of_a_record_outside_the_scope_is_not_found_or_forbidden(board):
    li = board.browser("li")
    response = li.post(url(board.ids["z1"], "/stage"), {"to": "needs"},
                       headers={"Accept": "application/json"})
    assert response.status_code == 404
    qian = board.browser("qian")
    response = qian.post(url(board.ids["z1"], "/stage"), {"to": "needs"},
                         headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_json_move_to_an_unknown_stage_is_invalid(board):
    response = board.browser("zhang").post(url(board.ids["z1"], "/stage"), {"to": "nowhere"},
                                           headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {
        "stage": "'nowhere' is not a stage of opportunity_standard"}


def test_the_kanban_page_renders_in_few_queries(board, count_queries):
    wang = board.browser("wang")
    with count_queries() as counter:
        wang.text("/o/opportunity/kanban?process=opportunity_standard")
    # per column (6): its cards, its count and its sum; plus the board's own look-ups
    assert counter.count <= 6 * 3 + 6, counter.statements


# -- the create form ------------------------------------------------------------------------
def stage_options(html: str) -> list[str]:
    select = re.search(r'<select[^>]*name="stage"[^>]*>(.*?)</select>', html, re.S)
    return re.findall(r'<option value="(\w+)"', select.group(1)) if select else []


def shown_as_text(html: str, name: str) -> str | None:
    found = re.search(rf'<input class="form-control-plaintext" id="f-{name}" value="([^"]*)"'
                      r' readonly>', html)
    return html_text.unescape(found.group(1)) if found else None


def test_the_create_form_shows_the_first_stage_of_the_types_process_as_text(sales):
    web = sales.browser("zhang")
    project = web.text("/o/opportunity/new?business_type=project")
    standard = web.text("/o/opportunity/new?business_type=standard")
    assert stage_options(project) == stage_options(standard) == []
    assert shown_as_text(project, "stage") == shown_as_text(standard, "stage") == "Qualify"
    assert (shown_as_text(project, "win_rate"), shown_as_text(standard, "win_rate")) == \
        ("5.00%", "10.00%")
