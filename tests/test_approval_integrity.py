"""Approval integrity (engine): a submitter never decides his own request unless the flow
allows it, a request to decide is closed once the approver's task is no longer open, a
flow may require a reason to reject, and a flow's condition reads the stored record
whatever the submitter may see.

The demo company (``people``): 王经理 wang (sales manager) is the superior of the reps
zhang, li and zhao; qian is finance; admin is the only super administrator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from test_approvals_engine import LARGE, SMALL, Flows, id_of, install_with_flows
from test_stages_engine import Deals

from metacrm.engine.access import roles
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.flows import approval_rules, approvals, notifications, todos
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import records

OWN = "the submitter may not decide his own approval"


def _flow(name: str, steps: list[dict], **extra) -> dict:
    return {"approval_flow": name, "label": {"en": name, "zh": name}, "object": "opportunity",
            **extra, "steps": steps}


def _step(name: str, approvers: dict, **extra) -> dict:
    return {"name": name, "approvers": approvers, **extra}


ZHANG_AND_QIAN = {"type": "users", "users": ["zhang", "qian"]}
ONLY_ZHANG = {"type": "users", "users": ["zhang"]}
QIAN = {"type": "users", "users": ["qian"]}
MANAGERS = {"type": "role", "role": "sales_manager"}
TEST_FLOWS = [
    _flow("with_zhang", [_step("board", ZHANG_AND_QIAN, mode="all")]),
    _flow("with_zhang_allowed", [_step("board", ZHANG_AND_QIAN, mode="all")],
          submitter_may_approve=True),
    _flow("zhang_alone_rejects", [_step("board", ONLY_ZHANG, if_empty="reject")]),
    _flow("zhang_alone_admin", [_step("board", ONLY_ZHANG, if_empty="admin")]),
    _flow("managers_then_finance", [_step("managers", MANAGERS, if_empty="auto_approve"),
                                    _step("finance", QIAN)]),
    _flow("vacant_to_admin", [_step("vacant", {"type": "role", "role": "vacant"},
                                    if_empty="admin")]),
    _flow("chain", [_step("chain", {"type": "superior_chain", "level": 3})]),
    _flow("picked", [_step("picked", {"type": "submitter_chooses"})]),
    _flow("picked_allowed", [_step("picked", {"type": "submitter_chooses"})],
          submitter_may_approve=True),
    _flow("either", [_step("board", {"type": "users", "users": ["wang", "qian"]}, mode="any")]),
    _flow("reason_needed", [_step("finance", QIAN)], reject_comment_required=True),
]


@pytest.fixture
def engine(bare_engine, tmp_path: Path):
    """The sample template and flows, and this module's flows in a template folder."""
    return install_with_flows(bare_engine, tmp_path, TEST_FLOWS)


@pytest.fixture
def deals(session, registry, people) -> Deals:
    return Deals(session, registry, people["zhang"])


@pytest.fixture
def flows(session, registry, people) -> Flows:
    return Flows(session, registry, people)


def refusal(caught: pytest.ExceptionInfo[ValidationFailed], field: str) -> str:
    assert set(caught.value.fields) == {field}
    return caught.value.fields[field].template


# -- the submitter is left out of his own steps -------------------------------------------
def test_a_step_naming_the_submitter_leaves_him_out(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "with_zhang")
    assert flows.states(approval_id) == {("qian", 0): "active"}
    assert flows.actions(approval_id) == ["submit", "submitter_skipped"]
    skipped = approvals.timeline(flows.session, [approval_id])[1]
    assert skipped["details"] == {"user": flows.people["zhang"].user_id}


def test_a_role_step_holding_the_submitter_leaves_him_out_and_passes_when_nobody_is_left(
        deals, flows):
    row = deals.make(actor=flows.people["wang"])
    approval_id = flows.submit(row["id"], "managers_then_finance", who="wang")
    assert flows.actions(approval_id) == ["submit", "submitter_skipped", "auto_approved"]
    assert flows.states(approval_id) == {("qian", 1): "active"}


def test_a_role_step_asks_its_other_holders_without_the_submitter(deals, flows, session,
                                                                 people):
    roles.set_user_roles(session, people["li"].user_id, ["sales_manager"])
    session.commit()
    row = deals.make(actor=people["wang"])
    approval_id = flows.submit(row["id"], "managers_then_finance", who="wang")
    assert flows.states(approval_id) == {("li", 0): "active"}


def test_a_step_with_only_the_submitter_follows_its_reject_policy(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "zhang_alone_rejects")
    assert flows.get(approval_id)["status"] == "rejected"
    assert flows.actions(approval_id) == ["submit", "submitter_skipped", "auto_rejected",
                                          "rejected"]


def test_a_step_with_only_the_submitter_goes_to_the_administrators(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "zhang_alone_admin")
    assert flows.states(approval_id) == {("admin", 0): "active"}


def test_an_administrator_submitting_is_not_among_the_administrators_asked(deals, flows):
    """The only administrator submits: nobody is left to escalate to, and the step
    passes as a step without approvers does when there is no administrator at all."""
    row = deals.make(actor=flows.people["admin"])
    approval_id = flows.submit(row["id"], "vacant_to_admin", who="admin")
    assert flows.tasks(approval_id) == []
    assert flows.actions(approval_id) == ["submit", "submitter_skipped", "auto_approved",
                                          "approved"]


def test_a_superior_chain_that_loops_back_to_the_submitter_leaves_him_out(deals, flows,
                                                                         session, people):
    """zhang → wang → zhang: the org refuses to make such a loop, so it is written as
    data kept from before that check; the chain still never reaches the submitter."""
    session.execute(sa.update(sys_user).where(sys_user.c.id == people["wang"].user_id)
                    .values(superior_id=people["zhang"].user_id))
    session.commit()
    approval_id = flows.submit(deals.make()["id"], "chain")
    assert flows.states(approval_id) == {("wang", 0): "active"}
    flows.act("approve", approval_id, "wang")
    assert flows.get(approval_id)["status"] == "approved"


def test_a_flow_may_let_the_submitter_approve(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "with_zhang_allowed")
    assert flows.states(approval_id) == {("zhang", 0): "active", ("qian", 0): "active"}
    flows.act("approve", approval_id, "zhang")
    flows.act("approve", approval_id, "qian")
    assert flows.get(approval_id)["status"] == "approved"


def test_the_submitter_may_not_choose_himself(deals, flows, people):
    with pytest.raises(ValidationFailed) as caught:
        flows.submit(deals.make()["id"], "picked", chosen={"picked": id_of(people, "zhang",
                                                                               "li")})
    assert refusal(caught, "chosen.picked") == OWN


def test_the_submitter_may_choose_himself_where_the_flow_allows_it(deals, flows, people):
    approval_id = flows.submit(deals.make()["id"], "picked_allowed",
                               chosen={"picked": id_of(people, "zhang")})
    assert flows.states(approval_id) == {("zhang", 0): "active"}


# -- hand-over and 加签 --------------------------------------------------------------------
def test_handing_over_to_the_submitter_is_refused(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    with pytest.raises(ValidationFailed) as caught:
        flows.act("hand_over", approval_id, "wang", to_user=people["zhang"].user_id)
    assert refusal(caught, "to_user") == OWN
    assert flows.states(approval_id) == {("wang", 0): "active"}
    assert flows.actions(approval_id) == ["submit"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_adding_the_submitter_as_an_approver_is_refused(deals, flows, people, position):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    with pytest.raises(ValidationFailed) as caught:
        flows.act("add_approver", approval_id, "wang", user_id=people["zhang"].user_id,
                  position=position)
    assert refusal(caught, "user_id") == OWN
    assert flows.states(approval_id) == {("wang", 0): "active"}


def test_handing_over_to_the_submitter_is_allowed_where_the_flow_allows_it(deals, flows,
                                                                          people):
    approval_id = flows.submit(deals.make()["id"], "with_zhang_allowed")
    flows.act("hand_over", approval_id, "qian", to_user=people["li"].user_id)
    flows.act("add_approver", approval_id, "li", user_id=people["wang"].user_id,
              position="after")
    assert flows.states(approval_id) == {("zhang", 0): "active", ("qian", 0): "handed_over",
                                         ("li", 0): "active", ("wang", 0): "waiting"}


def test_the_submitter_is_barred_unless_the_flow_allows_it(deals, flows, registry, people):
    barred = approvals.barred(registry, flows.get(flows.submit(deals.make()["id"],
                                                               "with_zhang")))
    allowed = approvals.barred(registry, flows.get(flows.submit(deals.make()["id"],
                                                                "with_zhang_allowed")))
    assert (barred, allowed) == ({people["zhang"].user_id}, set())


# -- requests to decide are closed with the task ------------------------------------------
def unread_requests(flows: Flows, who: str, approval_id: int) -> list[str]:
    return [n["kind"] for n in notifications.listing(flows.session, flows.people[who].user_id,
                                                     unread_only=True)
            if n["approval_id"] == approval_id and n["kind"] in notifications.REQUESTS]


def test_deciding_closes_the_approvers_request(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    assert unread_requests(flows, "wang", approval_id) == ["approval_submitted"]
    flows.act("approve", approval_id, "wang")
    assert unread_requests(flows, "wang", approval_id) == []
    assert unread_requests(flows, "qian", approval_id) == ["approval_submitted"]
    flows.act("reject", approval_id, "qian", comment="缺合同")
    assert unread_requests(flows, "qian", approval_id) == []


def test_the_first_answer_of_an_any_step_closes_the_others_requests(deals, flows, people):
    approval_id = flows.submit(deals.make()["id"], "either")
    flows.act("approve", approval_id, "qian")
    assert unread_requests(flows, "wang", approval_id) == []
    assert todos.counts(flows.session, people["wang"].user_id)["approvals"] == 0


def test_withdrawing_closes_the_approvers_request(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("withdraw", approval_id, "zhang")
    assert unread_requests(flows, "wang", approval_id) == []
    assert flows.notified("wang", "approval_withdrawn", approval_id)


def test_handing_over_closes_my_request_and_opens_the_new_approvers(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("hand_over", approval_id, "wang", to_user=people["li"].user_id)
    assert unread_requests(flows, "wang", approval_id) == []
    assert unread_requests(flows, "li", approval_id) == ["approval_handed_over"]
    flows.act("approve", approval_id, "li")
    assert unread_requests(flows, "li", approval_id) == []


def test_an_approver_waiting_for_one_added_before_him_keeps_his_request(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
              position="before")
    assert unread_requests(flows, "wang", approval_id) == ["approval_submitted"]
    assert unread_requests(flows, "zhao", approval_id) == ["approval_submitted"]


def test_other_notifications_stay_unread(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("reject", approval_id, "wang")
    assert [n["kind"] for n in notifications.listing(
        flows.session, flows.people["zhang"].user_id, unread_only=True)] == \
        ["approval_rejected"]


# -- a reason to reject ---------------------------------------------------------------------
def test_a_flow_requiring_a_reason_refuses_a_rejection_without_one(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "reason_needed")
    with pytest.raises(ValidationFailed) as caught:
        flows.act("reject", approval_id, "qian", comment="  ")
    assert refusal(caught, "comment") == "give a reason for the rejection"
    assert flows.get(approval_id)["status"] == "pending"
    flows.act("reject", approval_id, "qian", comment="价格低于底价")
    assert flows.get(approval_id)["status"] == "rejected"
    assert approvals.timeline(flows.session, [approval_id])[-2]["comment"] == "价格低于底价"


def test_a_flow_without_the_requirement_rejects_without_a_reason(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "either")
    flows.act("reject", approval_id, "qian")
    assert flows.get(approval_id)["status"] == "rejected"


# -- conditions on fields hidden from the submitter ---------------------------------------
@pytest.fixture
def amount_hidden_from_reps(session, registry) -> None:
    roles.set_field_rules(session, roles.role_id(session, "sales_rep"),
                          registry.object("opportunity"), {"amount": "hidden"})
    session.commit()


def reps_deal(deals: Deals, people: dict[str, Actor], amount: int) -> dict:
    """An opportunity of zhang's whose amount only the administrator could set."""
    return deals.make(actor=people["admin"], amount=amount, owner=people["zhang"].user_id)


def test_a_condition_on_a_hidden_field_is_met_by_what_is_stored(
        deals, flows, session, registry, people, amount_hidden_from_reps):
    obj = registry.object("opportunity")
    row = reps_deal(deals, people, LARGE)
    seen = records.get(session, registry, obj, row["id"], actor=people["zhang"])
    assert "amount" not in seen
    assert "large_opportunity" in {f.name for f in approval_rules.submittable(
        session, registry, obj, seen)}
    assert "large_opportunity" in {f.name for f in approval_rules.offered(
        session, registry, obj, row["id"], actor=people["zhang"])}
    approval_id = flows.submit(row["id"], "large_opportunity")
    assert flows.states(approval_id) == {("wang", 0): "active"}


def test_a_condition_on_a_hidden_field_not_met_refuses_without_the_value(
        deals, flows, session, registry, people, amount_hidden_from_reps):
    obj = registry.object("opportunity")
    row = reps_deal(deals, people, SMALL)
    seen = records.get(session, registry, obj, row["id"], actor=people["zhang"])
    assert "large_opportunity" not in {f.name for f in approval_rules.submittable(
        session, registry, obj, seen)}
    with pytest.raises(ValidationFailed) as caught:
        flows.submit(row["id"], "large_opportunity")
    message = caught.value.fields["flow"]
    assert message.template == "the record does not meet the condition of this approval flow"
    assert not message.params
