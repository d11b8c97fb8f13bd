"""Approval flows over HTTP: submitting from the record page, the approval card, the inbox,
an approval's page and its actions, the record locked while pending.

The demo company (``people``): 王经理 wang heads 销售部 and is the superior of the reps
zhang, li and zhao; qian is finance. A second chain for the multi-level types: the rep
wu (华南销售组) reports to 孙总监 sun, who reports to 陈总 chen (general manager), who
reports to 周董 zhou; sun heads 华南销售组 (under 销售部, headed by wang). Besides the
sample's flows, the tests install one flow per approver type and policy (below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.access import org, roles, users
from metacrm.engine.actor import SYSTEM, Actor
from metacrm.engine.flows import approvals
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_notification, sys_user
from metacrm.engine.writing import records

from conftest import SAMPLE, SAMPLE_FLOWS, Browser, signed_in

PASSWORD = "demo-password"


def flow(name: str, steps: str, *, obj: str = "contract", resubmit: str = "from_start",
         extra: str = "") -> str:
    return (f"approval_flow: {name}\nlabel: {{en: {name}, zh: {name}}}\nobject: {obj}\n"
            f"trigger: submit\nresubmit: {resubmit}\n{extra}steps:\n{steps}")


def step(name: str, approvers: str, mode: str = "any", if_empty: str = "admin") -> str:
    return (f"  - name: {name}\n    label: {{en: Step {name}, zh: 步骤{name}}}\n"
            f"    approvers: {approvers}\n    mode: {mode}\n    if_empty: {if_empty}\n")


ACTIVE = "on_approve: {status: active}\non_reject: {status: cancelled}\n"
FLOWS = {
    "roles": "roles:\n  - {name: general_manager, label: {en: General manager, zh: 总经理}}\n",
    "t_users_all": flow("t_users_all", step("both", "{type: users, users: [li, zhao]}", "all"),
                        extra=ACTIVE),
    "t_users_any": flow("t_users_any", step("either", "{type: users, users: [li, zhao]}")),
    "t_role": flow("t_role", step("finance", "{type: role, role: finance}")),
    "t_department_head": flow("t_department_head",
                              step("head", "{type: department_head, level: 2}")),
    "t_chain_level": flow("t_chain_level", step("chain", "{type: superior_chain, level: 2}")),
    "t_chain_role": flow("t_chain_role",
                         step("chain", "{type: superior_chain, role: general_manager}")),
    "t_chosen": flow("t_chosen", step("picked", "{type: submitter_chooses}", "all")),
    "t_empty_auto": flow("t_empty_auto", step("boss", "{type: superior, level: 1}",
                                              if_empty="auto_approve"), extra=ACTIVE),
    "t_empty_admin": flow("t_empty_admin", step("boss", "{type: superior, level: 1}",
                                                if_empty="admin")),
    "t_empty_reject": flow("t_empty_reject", step("boss", "{type: superior, level: 1}",
                                                  if_empty="reject"), extra=ACTIVE),
    "t_two_steps": flow("t_two_steps", step("first", "{type: users, users: [li]}")
                        + step("second", "{type: users, users: [zhao]}")),
}


@pytest.fixture
def engine(bare_engine, tmp_path):
    """The sample with its flows, and the test flows above."""
    folder = tmp_path / "test_flows"
    folder.mkdir()
    for name, text in FLOWS.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS, folder])
    return bare_engine


@dataclass
class Office:
    """The company, its browsers (one per user, in English) and what the tests look up."""

    app: Any
    engine: sa.Engine
    registry: Registry
    ids: dict[str, int]
    customers: dict[str, int]
    browsers: dict[str, Browser] = field(default_factory=dict)

    def user(self, name: str) -> Browser:
        if name not in self.browsers:
            browser = signed_in(self.app, name,
                                "admin-password" if name == "admin" else PASSWORD)
            browser.post("/language", {"language": "en", "next": "/"})
            self.browsers[name] = browser
        return self.browsers[name]

    def record(self, object_name: str, owner: str, **values: Any) -> int:
        defaults: dict[str, Any] = {"name": f"{object_name} of {owner}",
                                    "customer": self.customers[owner],
                                    "owner": self.ids[owner], "amount": 600000}
        if object_name == "opportunity":
            defaults["business_type"] = "standard"
        with Session(self.engine) as s, s.begin():
            return records.create(s, self.registry, object_name, {**defaults, **values},
                                  actor=SYSTEM)["id"]

    def row(self, object_name: str, record_id: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            return records.read(s, self.registry, object_name, record_id, actor=SYSTEM)

    def submit(self, who: str, object_name: str, record_id: int, flow_name: str,
               **form: Any):
        return self.user(who).post(f"/o/{object_name}/{record_id}/approvals",
                                   {"flow": flow_name, **form})

    def approval(self, object_name: str, record_id: int) -> dict[str, Any] | None:
        """The record's latest approval."""
        with Session(self.engine) as s:
            found = approvals.of_record(s, self.registry.object(object_name), record_id)
        return found[0] if found else None

    def started(self, who: str, object_name: str, record_id: int, flow_name: str,
                **form: Any) -> int:
        response = self.submit(who, object_name, record_id, flow_name, **form)
        assert response.status_code == 302, response.get_data(as_text=True)
        approval = self.approval(object_name, record_id)
        assert approval is not None, "nothing was submitted"
        return approval["id"]

    def act(self, who: str, approval_id: int, action: str, **form: Any):
        return self.user(who).post(f"/approvals/{approval_id}/{action}", form)

    def get(self, approval_id: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            return approvals.get(s, approval_id)

    def tasks(self, approval_id: int) -> list[tuple[str, str]]:
        """(username, status) of each task, oldest first."""
        names = {v: k for k, v in self.ids.items()}
        with Session(self.engine) as s:
            return [(names[t["user_id"]], t["status"]) for t in approvals.tasks(s, approval_id)]

    def waiting_on(self, approval_id: int) -> list[str]:
        return [name for name, status in self.tasks(approval_id) if status == "active"]

    def notifications(self, kind: str) -> list[tuple[str, int]]:
        names = {v: k for k, v in self.ids.items()}
        with Session(self.engine) as s:
            rows = s.execute(sa.select(sys_notification.c.user_id, sys_notification.c.approval_id)
                             .where(sys_notification.c.kind == kind)
                             .order_by(sys_notification.c.id)).all()
        return [(names[r.user_id], r.approval_id) for r in rows]


@pytest.fixture
def office(app, engine, registry, people: dict[str, Actor]) -> Office:
    ids = {name: actor.user_id for name, actor in people.items()}
    with Session(engine) as s, s.begin():
        sales = s.execute(sa.select(sys_user.c.department_id)
                          .where(sys_user.c.id == ids["wang"])).scalar_one()
        south = org.create_department(s, "华南销售组", sales)
        ids["zhou"] = users.create_user(s, "zhou", PASSWORD, display_name="周董",
                                        department_id=south)
        ids["chen"] = users.create_user(s, "chen", PASSWORD, display_name="陈总",
                                        department_id=south, superior_id=ids["zhou"],
                                        roles=["general_manager"])
        ids["sun"] = users.create_user(s, "sun", PASSWORD, display_name="孙总监",
                                       department_id=south, superior_id=ids["chen"],
                                       roles=["sales_manager"])
        ids["wu"] = users.create_user(s, "wu", PASSWORD, display_name="吴磊",
                                      department_id=south, superior_id=ids["sun"],
                                      roles=["sales_rep"])
        org.update_department(s, south, head_id=ids["sun"])
        roles.set_field_rules(s, roles.role_id(s, "sales_rep"), registry.object("contract"),
                              {"remark": "hidden"})
        customers = {name: records.create(s, registry, "customer",
                                          {"name": f"{name}的客户", "owner": ids[name]},
                                          actor=SYSTEM)["id"]
                     for name in ("zhang", "wang", "wu", "li")}
    return Office(app, engine, registry, ids, customers)


# -- the approval card and submitting ---------------------------------------------------
def test_a_record_that_meets_a_flow_offers_to_submit_it(office):
    opportunity = office.record("opportunity", "zhang", amount=600000)
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert 'id="approval-panel"' in html
    assert 'id="approval-submit-form"' in html
    assert 'value="large_opportunity"' in html


def test_a_record_below_the_condition_offers_no_flow_and_refuses_a_submission(office):
    opportunity = office.record("opportunity", "zhang", amount=1000)
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert 'id="approval-panel"' in html and 'value="large_opportunity"' not in html
    response = office.submit("zhang", "opportunity", opportunity, "large_opportunity")
    assert response.status_code == 302
    page = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert "the record does not meet the condition of this approval flow" in page
    assert office.approval("opportunity", opportunity) is None


def test_an_object_without_flows_has_no_approval_card(office):
    html = office.user("zhang").text(f"/o/customer/{office.customers['zhang']}")
    assert 'id="approval-panel"' not in html


def test_someone_who_may_not_edit_the_record_cannot_submit_it(office):
    opportunity = office.record("opportunity", "zhang")
    html = office.user("qian").text(f"/o/opportunity/{opportunity}")  # finance reads all
    assert 'id="approval-submit-form"' not in html
    office.submit("qian", "opportunity", opportunity, "large_opportunity")
    assert office.approval("opportunity", opportunity) is None


def test_submitting_from_the_record_page_starts_the_approval_with_the_superior(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity",
                                 comment="请审批")
    assert office.get(approval_id)["status"] == "pending"
    assert office.waiting_on(approval_id) == ["wang"]
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert "Submitted for approval." in html
    assert 'data-status="pending"' in html and 'id="approval-locked"' in html
    assert "Direct superior" in html and "王经理" in html  # the step and who it waits for
    assert "请审批" in html


# -- approver types -----------------------------------------------------------------------
def test_named_users_in_all_mode_must_both_approve(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_users_all")
    assert sorted(office.waiting_on(approval_id)) == ["li", "zhao"]
    office.act("li", approval_id, "approve")
    assert office.get(approval_id)["status"] == "pending"
    assert office.waiting_on(approval_id) == ["zhao"]
    office.act("zhao", approval_id, "approve")
    assert office.get(approval_id)["status"] == "approved"


def test_named_users_in_any_mode_the_first_approval_settles_the_step(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_users_any")
    office.act("zhao", approval_id, "approve")
    assert office.get(approval_id)["status"] == "approved"
    assert dict(office.tasks(approval_id)) == {"li": "cancelled", "zhao": "approved"}


def test_a_second_approver_of_an_any_step_is_told_someone_decided_first(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_users_any")
    page = office.user("li").text(f"/approvals/{approval_id}")  # li opens it, zhao is faster
    assert 'id="approval-approve"' in page
    office.act("zhao", approval_id, "approve")
    response = office.act("li", approval_id, "approve")
    assert response.status_code == 302
    html = office.user("li").text(response.headers["Location"])
    assert "this approval has ended: approved" in html
    assert dict(office.tasks(approval_id))["li"] == "cancelled"


def test_a_role_step_goes_to_its_members(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_role")
    assert office.waiting_on(approval_id) == ["qian"]


def test_a_department_head_step_goes_to_the_head_of_the_department_above(office):
    contract = office.record("contract", "wu")
    approval_id = office.started("wu", "contract", contract, "t_department_head")
    assert office.waiting_on(approval_id) == ["wang"]  # 华南销售组 (sun) → 销售部 (wang)


def test_a_superior_chain_up_to_a_level_approves_one_after_another(office):
    contract = office.record("contract", "wu")
    approval_id = office.started("wu", "contract", contract, "t_chain_level")
    assert office.tasks(approval_id) == [("sun", "active"), ("chen", "waiting")]
    office.act("sun", approval_id, "approve")
    assert office.tasks(approval_id) == [("sun", "approved"), ("chen", "active")]
    office.act("chen", approval_id, "approve")
    assert office.get(approval_id)["status"] == "approved"  # zhou, the third, not asked


def test_a_superior_chain_up_to_a_role_stops_at_its_first_holder(office):
    contract = office.record("contract", "wu")
    approval_id = office.started("wu", "contract", contract, "t_chain_role")
    assert [name for name, _ in office.tasks(approval_id)] == ["sun", "chen"]


def test_the_submitter_chooses_the_approvers_on_the_record_page(office):
    contract = office.record("contract", "zhang")
    html = office.user("zhang").text(f"/o/contract/{contract}")
    assert 'name="chosen.picked"' in html and 'id="approval-flow"' in html
    approval_id = office.started("zhang", "contract", contract, "t_chosen",
                                 **{"chosen.picked": [office.ids["li"], office.ids["qian"]]})
    assert sorted(office.waiting_on(approval_id)) == ["li", "qian"]


def test_submitting_without_choosing_the_approvers_is_refused(office):
    contract = office.record("contract", "zhang")
    office.submit("zhang", "contract", contract, "t_chosen")
    assert office.approval("contract", contract) is None
    html = office.user("zhang").text(f"/o/contract/{contract}")
    assert "choose the approvers of step Step picked" in html


# -- nobody to approve ----------------------------------------------------------------------
def test_a_step_without_approvers_is_passed_under_auto_approve(office):
    contract = office.record("contract", "wang")  # wang has no superior
    approval_id = office.started("wang", "contract", contract, "t_empty_auto")
    assert office.get(approval_id)["status"] == "approved"
    assert office.row("contract", contract)["status"] == "active"
    html = office.user("wang").text(f"/approvals/{approval_id}")
    assert 'data-action="auto_approved"' in html


def test_a_step_without_approvers_goes_to_the_administrators_under_admin(office):
    contract = office.record("contract", "wang")
    approval_id = office.started("wang", "contract", contract, "t_empty_admin")
    assert office.waiting_on(approval_id) == ["admin"]
    html = office.user("admin").text("/approvals?box=pending")
    assert f'data-approval="{approval_id}"' in html


def test_a_step_without_approvers_rejects_under_reject(office):
    contract = office.record("contract", "wang")
    approval_id = office.started("wang", "contract", contract, "t_empty_reject")
    assert office.get(approval_id)["status"] == "rejected"
    assert office.row("contract", contract)["status"] == "cancelled"


# -- rejecting and resubmitting -------------------------------------------------------------
def test_a_rejection_returns_the_record_and_a_resubmission_starts_again_from_the_start(office):
    contract = office.record("contract", "zhang")
    approval_id = office.started("zhang", "contract", contract, "t_two_steps")
    office.act("li", approval_id, "approve")
    office.act("zhao", approval_id, "reject", comment="金额不对")
    assert office.get(approval_id)["status"] == "rejected"
    html = office.user("zhang").text(f"/o/contract/{contract}")
    assert "金额不对" in html and 'id="edit-record"' in html
    assert "Resubmit for approval" in html
    assert office.started("zhang", "contract", contract, "t_two_steps") == approval_id
    resubmitted = office.get(approval_id)
    assert (resubmitted["round"], resubmitted["step"]) == (2, 0)
    assert office.waiting_on(approval_id) == ["li"]


def test_a_resubmission_continues_from_the_rejecting_step_when_the_flow_says_so(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "approve")
    office.act("qian", approval_id, "reject", comment="请补充付款条件")
    office.started("zhang", "opportunity", opportunity, "large_opportunity")
    resubmitted = office.get(approval_id)
    assert (resubmitted["round"], resubmitted["step"]) == (2, 1)
    assert office.waiting_on(approval_id) == ["qian"]


def test_outcomes_set_the_flows_fields(office):
    approved = office.record("opportunity", "zhang")
    first = office.started("zhang", "opportunity", approved, "large_opportunity")
    office.act("wang", first, "approve")
    office.act("qian", first, "approve")
    assert office.row("opportunity", approved)["approval_status"] == "approved"
    rejected = office.record("opportunity", "zhang", name="另一个商机")
    second = office.started("zhang", "opportunity", rejected, "large_opportunity")
    office.act("wang", second, "reject")
    assert office.row("opportunity", rejected)["approval_status"] == "rejected"


def test_both_approvers_and_both_comments_show_in_the_records_timeline(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "approve", comment="同意，注意回款")
    office.act("qian", approval_id, "approve", comment="财务无异议")
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert 'id="approval-panel" data-status="approved"' in html
    for text in ("同意，注意回款", "财务无异议", "王经理", "钱芳", "Finance review",
                 'data-action="approved"'):
        assert text in html


# -- withdraw, hand over, add approvers ------------------------------------------------------
def test_the_submitter_withdraws_and_may_edit_again(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("zhang", approval_id, "withdraw", back=f"/o/opportunity/{opportunity}")
    assert office.get(approval_id)["status"] == "withdrawn"
    assert office.tasks(approval_id) == [("wang", "cancelled")]
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert "Withdrawn." in html and 'id="edit-record"' in html
    assert 'data-action="withdraw"' in html


def test_only_the_submitter_may_withdraw(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    response = office.act("wang", approval_id, "withdraw")
    assert response.status_code == 302
    page = office.user("wang").text(response.headers["Location"])
    assert "only the submitter may withdraw an approval" in page
    assert office.get(approval_id)["status"] == "pending"


def test_an_approver_hands_the_step_over(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "hand-over", to_user=office.ids["li"], comment="我出差")
    assert office.tasks(approval_id) == [("wang", "handed_over"), ("li", "active")]
    office.act("li", approval_id, "approve")
    assert office.waiting_on(approval_id) == ["qian"]
    html = office.user("zhang").text(f"/approvals/{approval_id}")
    assert "handed the step over to 李娜" in html and "我出差" in html


def test_an_approver_adds_an_approver_before_themselves(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "add-approver", user_id=office.ids["li"], position="before")
    assert office.tasks(approval_id) == [("wang", "waiting"), ("li", "active")]
    office.act("li", approval_id, "approve")
    assert office.waiting_on(approval_id) == ["wang"]
    office.act("wang", approval_id, "approve")
    assert office.waiting_on(approval_id) == ["qian"]
    html = office.user("wang").text(f"/approvals/{approval_id}")
    assert "added 李娜 to approve before them" in html


def test_an_approver_adds_an_approver_after_themselves(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "add-approver", user_id=office.ids["zhao"], position="after")
    assert office.tasks(approval_id) == [("wang", "active"), ("zhao", "waiting")]
    office.act("wang", approval_id, "approve")
    assert office.waiting_on(approval_id) == ["zhao"]
    office.act("zhao", approval_id, "approve")
    assert office.waiting_on(approval_id) == ["qian"]
    html = office.user("zhang").text(f"/approvals/{approval_id}")
    assert "added 赵强 to approve after them" in html


def test_handing_over_to_nobody_is_refused_with_a_message(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    response = office.act("wang", approval_id, "hand-over", to_user="")
    page = office.user("wang").text(response.headers["Location"])
    assert "no active user with id" in page
    assert office.tasks(approval_id) == [("wang", "active")]


# -- the lock -------------------------------------------------------------------------------
def test_a_pending_record_hides_edit_delete_and_transfer(office):
    opportunity = office.record("opportunity", "zhang")
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert all(f'id="{button}"' in html
               for button in ("edit-record", "delete-record", "transfer-record"))
    office.started("zhang", "opportunity", opportunity, "large_opportunity")
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert not any(f'id="{button}"' in html
                   for button in ("edit-record", "delete-record", "transfer-record"))


def test_the_edit_form_of_a_pending_record_answers_409(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    zhang = office.user("zhang")
    response = zhang.post(f"/o/opportunity/{opportunity}/edit",
                          {"name": "改名", "customer": office.customers["zhang"],
                           "amount": "700000",
                           "version": str(office.row("opportunity", opportunity)["version"])})
    assert response.status_code == 409
    assert f"the record is locked while approval {approval_id} is pending" in \
        response.get_data(as_text=True)
    assert office.row("opportunity", opportunity)["name"] == "opportunity of zhang"


def test_the_api_refuses_to_change_a_pending_record(office, app):
    opportunity = office.record("opportunity", "zhang")
    office.started("zhang", "opportunity", opportunity, "large_opportunity")
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "zhang", "password": PASSWORD}
                        ).get_json()["token"]
    response = client.patch(f"/api/v1/objects/opportunity/records/{opportunity}",
                            json={"name": "改名", "version": 1},
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "locked"


def test_a_pending_record_cannot_be_deleted(office):
    opportunity = office.record("opportunity", "zhang")
    office.started("zhang", "opportunity", opportunity, "large_opportunity")
    response = office.user("zhang").post(f"/o/opportunity/{opportunity}/delete")
    assert response.status_code == 409
    assert office.user("zhang").get(f"/o/opportunity/{opportunity}").status_code == 200


def test_a_record_in_an_approval_cannot_be_submitted_twice(office):
    opportunity = office.record("opportunity", "zhang")
    first = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    html = office.user("zhang").text(f"/o/opportunity/{opportunity}")
    assert 'id="approval-submit-form"' not in html
    response = office.submit("zhang", "opportunity", opportunity, "large_opportunity")
    assert response.status_code == 302
    assert office.approval("opportunity", opportunity)["id"] == first


# -- the inbox ------------------------------------------------------------------------------
def test_the_inbox_lists_pending_approvals_with_their_record_and_step(office):
    opportunity = office.record("opportunity", "zhang", name="华东大单")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    html = office.user("wang").text("/approvals")
    assert f'data-approval="{approval_id}"' in html
    for text in ("华东大单", "Large opportunity approval", "张伟", "Direct superior",
                 "Opportunity", f'href="/approvals/{approval_id}"', "quick-approve"):
        assert text in html
    assert office.user("zhang").text("/approvals").count('class="approval-row"') == 0


def test_a_quick_approval_from_the_inbox_moves_it_to_processed(office):
    opportunity = office.record("opportunity", "zhang", name="华东大单")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    wang = office.user("wang")
    wang.text("/approvals")
    response = office.act("wang", approval_id, "approve", back="/approvals?box=pending")
    assert response.headers["Location"] == "/approvals?box=pending"
    assert f'data-approval="{approval_id}"' not in wang.text("/approvals?box=pending")
    processed = wang.text("/approvals?box=processed")
    assert f'data-approval="{approval_id}"' in processed and "华东大单" in processed
    assert office.waiting_on(approval_id) == ["qian"]


def test_the_submitted_box_shows_what_i_submitted_with_its_status(office):
    opportunity = office.record("opportunity", "zhang", name="华东大单")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    office.act("wang", approval_id, "reject")
    html = office.user("zhang").text("/approvals?box=submitted")
    assert f'data-approval="{approval_id}"' in html and 'data-status="rejected"' in html


def test_the_inbox_tabs_count_each_box(office):
    for n in range(2):
        record = office.record("opportunity", "zhang", name=f"单{n}")
        office.started("zhang", "opportunity", record, "large_opportunity")
    html = office.user("wang").text("/approvals?box=processed")
    tabs = html[html.index('id="approval-boxes"'):html.index("</ul>", html.index(
        'id="approval-boxes"'))]
    counts = [part.split("</span>")[0].rsplit(">", 1)[1]
              for part in tabs.split('box-count')[1:]]
    assert counts == ["2", "0", "0"]


# -- an approval's page ---------------------------------------------------------------------
def test_an_approver_outside_the_records_scope_sees_its_fields_but_not_hidden_ones(office):
    contract = office.record("contract", "zhang", name="保密合同", remark="内部备注")
    approval_id = office.started("zhang", "contract", contract, "t_users_all")
    assert office.user("zhao").get(f"/o/contract/{contract}").status_code == 404  # own scope
    html = office.user("zhao").text(f"/approvals/{approval_id}")
    assert "保密合同" in html and 'data-field="amount"' in html
    assert 'data-field="remark"' not in html and "内部备注" not in html
    assert 'id="approval-approve"' in html and 'id="approval-hand-over"' in html
    assert 'id="approval-add"' in html and 'id="approval-withdraw"' not in html


def test_the_submitter_sees_the_steps_and_may_withdraw_but_not_decide(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    html = office.user("zhang").text(f"/approvals/{approval_id}")
    assert 'data-step="manager"' in html and 'data-step="finance"' in html
    assert f'data-user="{office.ids["wang"]}" data-status="active"' in html
    assert 'id="approval-withdraw"' in html and 'id="approval-approve"' not in html


def test_an_approval_is_hidden_from_unrelated_users(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    assert office.user("li").get(f"/approvals/{approval_id}").status_code == 404
    assert office.act("li", approval_id, "approve").status_code == 404
    assert office.user("li").get("/approvals/999999").status_code == 404


def test_whoever_may_read_the_record_sees_its_approval(office):
    opportunity = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", opportunity, "large_opportunity")
    html = office.user("qian").text(f"/approvals/{approval_id}")  # finance: reads everything
    assert 'id="approval-actions"' not in html  # not her step yet


# -- notifications --------------------------------------------------------------------------
def test_submitting_approving_rejecting_and_withdrawing_notify(office):
    first = office.record("opportunity", "zhang")
    approval_id = office.started("zhang", "opportunity", first, "large_opportunity")
    assert office.notifications("approval_submitted") == [("wang", approval_id)]
    office.act("wang", approval_id, "approve")
    office.act("qian", approval_id, "approve")
    assert office.notifications("approval_approved") == [("zhang", approval_id)]
    second = office.record("opportunity", "zhang", name="第二个")
    rejected = office.started("zhang", "opportunity", second, "large_opportunity")
    office.act("wang", rejected, "reject")
    assert office.notifications("approval_rejected") == [("zhang", rejected)]
    third = office.record("opportunity", "zhang", name="第三个")
    withdrawn = office.started("zhang", "opportunity", third, "large_opportunity")
    office.act("zhang", withdrawn, "withdraw")
    assert office.notifications("approval_withdrawn") == [("wang", withdrawn)]
