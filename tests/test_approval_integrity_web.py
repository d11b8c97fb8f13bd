"""Approval integrity over HTTP: hand-over and 加签 neither offer nor accept the submitter
(pages and API), the submitter's choice of approvers leaves him out, a request to decide
is closed once decided, the inbox's quick reject takes a reason, the todo centre opens
on a tab with work, and a flow condition on a field hidden from the submitter holds.

The company of ``test_approvals_web`` (``office``): 王经理 wang is the superior of the
reps zhang, li and zhao; qian is finance.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from test_approvals_web import FLOWS, PASSWORD, Office, flow, step
from test_approvals_web import office as office  # noqa: F401 - a fixture

from metacrm.engine import instance
from metacrm.engine.access import roles
from metacrm.engine.flows import approvals, todos
from metacrm.engine.systables import sys_approval_task, sys_notification

from conftest import SAMPLE, SAMPLE_FLOWS, ApiClient, signed_in

OWN = "the submitter may not decide his own approval"
OWN_ZH = "发起人不能审批自己提交的申请"
EXTRA = {
    "t_reason": flow("t_reason", step("finance", "{type: users, users: [qian]}"),
                     extra="reject_comment_required: true\n"),
    "t_chosen_allowed": flow("t_chosen_allowed", step("picked", "{type: submitter_chooses}"),
                             extra="submitter_may_approve: true\n"),
}


@pytest.fixture
def engine(bare_engine, tmp_path):
    """The sample with its flows, the flows of test_approvals_web and two more."""
    folder = tmp_path / "test_flows"
    folder.mkdir()
    for name, text in {**FLOWS, **EXTRA}.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS, folder])
    return bare_engine


def options(html: str, select_id: str) -> set[int]:
    """The user ids a select offers."""
    start = html.index(f'id="{select_id}"')
    block = html[start:html.index("</select>", start)]
    return {int(v) for v in re.findall(r'<option value="(\d+)"', block)}


def api_as(office: Office, username: str) -> ApiClient:
    client = office.app.test_client()
    response = client.post("/api/v1/auth/token",
                           json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return ApiClient(client, response.get_json()["token"])


def pending_deal(office: Office, name: str = "华东大单") -> int:
    """zhang's large opportunity, submitted: it waits for wang."""
    record = office.record("opportunity", "zhang", name=name)
    return office.started("zhang", "opportunity", record, "large_opportunity")


# -- hand-over and 加签 --------------------------------------------------------------------
def test_the_hand_over_and_add_approver_lists_leave_out_the_submitter(office):
    approval_id = pending_deal(office)
    html = office.user("wang").text(f"/approvals/{approval_id}")
    for select_id in ("hand-over-user", "add-approver-user"):
        offered = options(html, select_id)
        assert office.ids["zhang"] not in offered and office.ids["wang"] not in offered
        assert office.ids["li"] in offered


def test_handing_over_to_the_submitter_is_refused_in_his_language(office):
    approval_id = pending_deal(office)
    wang = signed_in(office.app, "wang", PASSWORD)  # reads Chinese
    wang.text(f"/approvals/{approval_id}")
    response = wang.post(f"/approvals/{approval_id}/hand-over",
                         {"to_user": office.ids["zhang"], "back": f"/approvals/{approval_id}"})
    assert response.status_code == 302
    assert OWN_ZH in wang.text(f"/approvals/{approval_id}")
    assert office.tasks(approval_id) == [("wang", "active")]


def test_adding_the_submitter_is_refused_on_the_page(office):
    approval_id = pending_deal(office)
    office.user("wang").text(f"/approvals/{approval_id}")
    office.act("wang", approval_id, "add-approver", user_id=office.ids["zhang"],
               position="after")
    assert OWN in office.user("wang").text(f"/approvals/{approval_id}")
    assert office.tasks(approval_id) == [("wang", "active")]


@pytest.mark.parametrize(("action", "body", "field"), [
    ("hand-over", {"to_user": "zhang"}, "to_user"),
    ("add-approver", {"user_id": "zhang", "position": "before"}, "user_id"),
])
def test_the_api_refuses_to_give_the_submitter_the_task(office, action, body, field):
    approval_id = pending_deal(office)
    wang = api_as(office, "wang")
    response = wang.post(f"/api/v1/approvals/{approval_id}/{action}",
                         json={k: office.ids[v] if k != "position" else v
                               for k, v in body.items()})
    assert response.status_code == 422, response.get_json()
    assert OWN_ZH in str(response.get_json())
    assert field in str(response.get_json())
    assert office.tasks(approval_id) == [("wang", "active")]


def test_the_submitters_choice_of_approvers_leaves_him_out(office):
    contract = office.record("contract", "zhang")
    html = office.user("zhang").text(f"/o/contract/{contract}")
    offered = options(html, "chosen-t_chosen-picked")
    assert office.ids["zhang"] not in offered and office.ids["li"] in offered
    office.submit("zhang", "contract", contract, "t_chosen",
                  **{"chosen.picked": office.ids["zhang"]})
    assert office.approval("contract", contract) is None
    assert OWN in office.user("zhang").text(f"/o/contract/{contract}")


def test_a_flow_letting_the_submitter_approve_offers_him(office):
    contract = office.record("contract", "zhang")
    html = office.user("zhang").text(f"/o/contract/{contract}")
    assert office.ids["zhang"] in options(html, "chosen-t_chosen_allowed-picked")
    approval_id = office.started("zhang", "contract", contract, "t_chosen_allowed",
                                 **{"chosen.picked": office.ids["zhang"]})
    assert office.waiting_on(approval_id) == ["zhang"]


# -- requests to decide are closed ----------------------------------------------------------
def unread(office: Office, who: str, approval_id: int) -> list[str]:
    n = sys_notification
    with Session(office.engine) as s:
        return list(s.execute(sa.select(n.c.kind).where(
            n.c.user_id == office.ids[who], n.c.approval_id == approval_id,
            n.c.read_at.is_(None)).order_by(n.c.id)).scalars())


def test_a_decided_request_is_read_and_shows_where_the_approval_stands(office):
    approval_id = pending_deal(office)
    assert unread(office, "wang", approval_id) == ["approval_submitted"]
    office.user("wang").text("/approvals")
    office.act("wang", approval_id, "approve", back="/approvals")
    assert unread(office, "wang", approval_id) == []
    office.act("qian", approval_id, "approve")
    html = office.user("wang").text("/notifications")
    assert 'data-kind="approval_submitted"' in html
    assert 'class="badge text-bg-success fw-normal approval-now" data-status="approved"' in html


def test_an_outcome_notification_does_not_repeat_its_status_in_a_badge(office):
    approval_id = pending_deal(office)
    office.act("wang", approval_id, "reject", comment="预算不足")
    html = office.user("zhang").text("/notifications")
    assert 'data-kind="approval_rejected"' in html and "approval-now" not in html


def test_a_withdrawn_request_is_read_and_leaves_the_todo_count(office):
    approval_id = pending_deal(office)
    office.act("zhang", approval_id, "withdraw")
    assert unread(office, "wang", approval_id) == ["approval_withdrawn"]
    with Session(office.engine) as s:
        assert todos.counts(s, office.ids["wang"])["approvals"] == 0


def test_a_handed_over_request_is_read(office):
    approval_id = pending_deal(office)
    office.act("wang", approval_id, "hand-over", to_user=office.ids["li"])
    assert unread(office, "wang", approval_id) == []
    assert unread(office, "li", approval_id) == ["approval_handed_over"]


# -- quick reject with a reason -----------------------------------------------------------
def test_the_inbox_offers_a_reason_beside_the_quick_actions(office):
    pending_deal(office)
    html = office.user("wang").text("/approvals")
    assert html.count('name="comment"') == 2  # the card and the table row
    assert "Comment or reason for rejecting" in html


def test_a_quick_reject_stores_its_reason(office):
    approval_id = pending_deal(office)
    office.user("wang").text("/approvals")
    response = office.act("wang", approval_id, "reject", comment="预算未确认",
                          back="/approvals?box=pending")
    assert response.headers["Location"] == "/approvals?box=pending"
    assert office.get(approval_id)["status"] == "rejected"
    with Session(office.engine) as s:
        event = next(e for e in approvals.timeline(s, [approval_id]) if e["action"] == "reject")
        task = s.execute(sa.select(sys_approval_task.c.comment).where(
            sys_approval_task.c.approval_id == approval_id,
            sys_approval_task.c.user_id == office.ids["wang"])).scalar_one()
    assert (event["comment"], event["actor_id"], task) == \
        ("预算未确认", office.ids["wang"], "预算未确认")


def test_a_flow_requiring_a_reason_refuses_a_quick_reject_without_one(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_reason")
    office.user("qian").text("/approvals")
    office.act("qian", approval_id, "reject", comment="", back="/approvals")
    assert office.get(approval_id)["status"] == "pending"
    assert "give a reason for the rejection" in office.user("qian").text("/approvals")
    office.act("qian", approval_id, "reject", comment="金额有误", back="/approvals")
    assert office.get(approval_id)["status"] == "rejected"


# -- the todo centre's first tab ------------------------------------------------------------
def active_tab(html: str) -> str:
    return re.search(r'class="nav-link active" href="[^"]*" data-tab="(\w+)"', html).group(1)


def test_the_todo_centre_opens_on_the_first_tab_with_work(office):
    record = office.record("opportunity", "wang", name="转来的商机")
    with Session(office.engine) as s, s.begin():
        todos.add(s, [{"user_id": office.ids["wang"], "kind": "assigned",
                       "object": "opportunity", "record_id": record}])
    wang = office.user("wang")
    assert active_tab(wang.text("/todo")) == "assigned"
    assert active_tab(wang.text("/todo?tab=approvals")) == "approvals"
    pending_deal(office)
    assert active_tab(wang.text("/todo")) == "approvals"


def test_the_todo_centre_with_nothing_to_do_opens_on_approvals(office):
    assert active_tab(office.user("li").text("/todo")) == "approvals"


# -- a condition on a field hidden from the submitter ---------------------------------------
@pytest.fixture
def amount_hidden(office: Office) -> Office:
    with Session(office.engine) as s, s.begin():
        roles.set_field_rules(s, roles.role_id(s, "sales_rep"),
                              office.registry.object("opportunity"), {"amount": "hidden"})
    return office


def test_a_flow_on_a_hidden_field_is_offered_and_submitted_by_the_rep(amount_hidden):
    office = amount_hidden
    record = office.record("opportunity", "zhang", amount=654321)
    html = office.user("zhang").text(f"/o/opportunity/{record}")
    assert 'value="large_opportunity"' in html and "654" not in html
    zhang = api_as(office, "zhang")
    listed = zhang.get(f"/api/v1/objects/opportunity/records/{record}/approvals")
    assert [f["name"] for f in listed.get_json()["submittable"]] == ["large_opportunity"]
    assert "654" not in listed.get_data(as_text=True)
    approval_id = office.started("zhang", "opportunity", record, "large_opportunity")
    assert office.waiting_on(approval_id) == ["wang"]


def test_a_flow_on_a_hidden_field_not_met_is_refused_without_the_value(amount_hidden):
    office = amount_hidden
    record = office.record("opportunity", "zhang", amount=4321)
    zhang = api_as(office, "zhang")
    listed = zhang.get(f"/api/v1/objects/opportunity/records/{record}/approvals")
    assert listed.get_json()["submittable"] == []
    refused = zhang.post(f"/api/v1/objects/opportunity/records/{record}/approvals",
                         json={"flow": "large_opportunity"})
    assert refused.status_code == 422
    assert "4321" not in refused.get_data(as_text=True)
    assert "amount" not in refused.get_data(as_text=True)
