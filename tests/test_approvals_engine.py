"""Approval flows at run time (engine): the approver catalogue, modes, empty-approver
policies, reject and resubmit, withdraw, hand over, add approver, the lock while pending,
outcome updates, the field-change trigger and the notifications."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session
from test_stages_engine import Deals

from metacrm.engine import instance
from metacrm.engine.access import org, roles
from metacrm.engine.actor import Actor
from metacrm.engine.errors import (
    ApprovalConflict,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    ValidationFailed,
)
from metacrm.engine.flows import approval_rules, approvals, approvers, notifications
from metacrm.engine.schema.registry import Registry, owned_fields
from metacrm.engine.writing import records
from metacrm.metadata.flows import ApproverDef, StepDef, build_approval_flow
from metacrm.metadata.labels import Label

from conftest import SAMPLE, SAMPLE_FLOWS

LARGE = 800_000  # above the sample's large-opportunity threshold
SMALL = 1_000  # below it
HUGE = 5_000_000  # the field-change flow's threshold


def _flow(name: str, steps: list[dict], **extra) -> dict:
    return {"approval_flow": name, "label": {"en": name, "zh": name}, "object": "opportunity",
            **extra, "steps": steps}


def _step(name: str, approvers: dict, **extra) -> dict:
    return {"name": name, "approvers": approvers, **extra}


WANG_AND_QIAN = {"type": "users", "users": ["wang", "qian"]}
ADMIN = {"type": "users", "users": ["admin"]}
QIAN = {"type": "users", "users": ["qian"]}
VACANT = {"type": "role", "role": "vacant"}
TEST_FLOWS = [
    _flow("board_all", [_step("board", WANG_AND_QIAN, mode="all"), _step("final", ADMIN)]),
    _flow("board_any", [_step("board", WANG_AND_QIAN, mode="any"), _step("final", ADMIN)]),
    _flow("nobody_passes", [_step("vacant", VACANT, if_empty="auto_approve"),
                            _step("final", QIAN)]),
    _flow("nobody_goes_to_admin", [_step("vacant", VACANT, if_empty="admin")]),
    _flow("nobody_rejects", [_step("vacant", VACANT, if_empty="reject")],
          on_submit={"approval_status": "pending"}, on_reject={"approval_status": "rejected"}),
    _flow("nobody_approves", [_step("vacant", VACANT, if_empty="auto_approve")],
          on_submit={"approval_status": "pending"}, on_approve={"approval_status": "approved"}),
    _flow("restart", [_step("manager", {"type": "superior", "level": 1}),
                      _step("finance", QIAN)], resubmit="from_start"),
    _flow("picked", [_step("picked", {"type": "submitter_chooses"}, mode="all")]),
    _flow("big_change", [_step("finance", QIAN)], trigger="field_change",
          trigger_fields=["amount"], condition=f"amount >= {HUGE}",
          on_submit={"approval_status": "pending"}),
]


@pytest.fixture
def engine(bare_engine, tmp_path: Path):
    """The sample template and flows, and this module's flows in a template folder."""
    return install_with_flows(bare_engine, tmp_path, TEST_FLOWS)


def install_with_flows(bare_engine, tmp_path: Path, flows: list[dict]):
    """The sample template and flows, and ``flows`` (with a role nobody holds) in a
    template folder of their own."""
    folder = tmp_path / "test_flows"
    folder.mkdir()
    for raw in flows:
        (folder / f"{raw['approval_flow']}.yaml").write_text(
            yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    (folder / "roles.yaml").write_text(yaml.safe_dump(
        {"roles": [{"name": "vacant", "label": {"en": "Vacant", "zh": "空缺"}}]}),
        encoding="utf-8")
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS, folder])
    return bare_engine


@pytest.fixture
def zhang(people) -> Actor:
    return people["zhang"]


@pytest.fixture
def deals(session, registry, zhang) -> Deals:
    return Deals(session, registry, zhang)


class Flows:
    """Approval actions, each committed as a request would."""

    def __init__(self, session: Session, registry: Registry, people: dict[str, Actor]):
        self.session, self.registry, self.people = session, registry, people

    def submit(self, record_id: int, flow: str, who: str = "zhang", **kw) -> int:
        found = approvals.submit(self.session, self.registry, "opportunity", record_id, flow,
                                 actor=self.people[who], **kw)
        self.session.commit()
        return found

    def act(self, action: str, approval_id: int, who: str, **kw) -> None:
        try:
            getattr(approvals, action)(self.session, self.registry, approval_id,
                                       actor=self.people[who], **kw)
        except Exception:
            self.session.rollback()
            raise
        self.session.commit()

    def get(self, approval_id: int) -> dict:
        return approvals.get(self.session, approval_id)

    def tasks(self, approval_id: int, **where) -> list[dict]:
        return [t for t in approvals.tasks(self.session, approval_id)
                if all(t[k] == v for k, v in where.items())]

    def states(self, approval_id: int, round_: int | None = None) -> dict[tuple[str, int], str]:
        """(username, step) -> task status, for the round given or the current one."""
        names = {a.user_id: n for n, a in self.people.items()}
        round_ = round_ or self.get(approval_id)["round"]
        return {(names[t["user_id"]], t["step"]): t["status"]
                for t in self.tasks(approval_id, round=round_)}

    def actions(self, approval_id: int) -> list[str]:
        return [e["action"] for e in approvals.timeline(self.session, [approval_id])]

    def notified(self, who: str, kind: str, approval_id: int) -> bool:
        return any(n["kind"] == kind and n["approval_id"] == approval_id
                   for n in notifications.listing(self.session, self.people[who].user_id))


@pytest.fixture
def flows(session, registry, people) -> Flows:
    return Flows(session, registry, people)


def id_of(people: dict[str, Actor], *names: str) -> list[int]:
    return [people[n].user_id for n in names]


# -- the approver catalogue -------------------------------------------------------------------
def step_of(type_: str, **settings) -> StepDef:
    return StepDef("s", "s", Label("s", "s"), ApproverDef(type=type_, **settings))


def resolve(session: Session, who: Actor, type_: str, chosen=(), **settings) -> list[int]:
    return approvers.resolve(session, step_of(type_, **settings),
                             approvers.Submitter(who.user_id, who.department_id), chosen)


@pytest.fixture
def two_levels(session, people) -> dict[str, Actor]:
    """zhang → wang → admin; admin heads the top department."""
    org.update_user(session, None, people["wang"].user_id, superior_id=people["admin"].user_id)
    org.update_department(session, org.root_department_id(session),
                          head_id=people["admin"].user_id)
    session.commit()
    return people


def test_the_first_level_superior_is_the_direct_superior(session, people):
    assert resolve(session, people["zhang"], "superior", level=1) == id_of(people, "wang")


def test_the_second_level_superior_is_the_superiors_superior(session, two_levels):
    assert resolve(session, two_levels["zhang"], "superior", level=2) == \
        id_of(two_levels, "admin")


def test_a_superior_level_above_the_top_finds_nobody(session, people):
    assert resolve(session, people["zhang"], "superior", level=2) == []
    assert resolve(session, people["qian"], "superior", level=1) == []


def test_the_department_head_is_the_nearest_head_above_the_submitter(session, people):
    assert resolve(session, people["zhang"], "department_head") == id_of(people, "wang")


def test_a_head_submitting_goes_to_the_head_above(session, two_levels):
    assert resolve(session, two_levels["wang"], "department_head") == \
        id_of(two_levels, "admin")


def test_the_department_head_of_the_second_level(session, two_levels):
    assert resolve(session, two_levels["zhang"], "department_head", level=2) == \
        id_of(two_levels, "admin")


def test_a_superior_chain_runs_up_to_its_level(session, two_levels):
    assert resolve(session, two_levels["zhang"], "superior_chain", level=2) == \
        id_of(two_levels, "wang", "admin")
    assert resolve(session, two_levels["zhang"], "superior_chain", level=1) == \
        id_of(two_levels, "wang")


def test_a_superior_chain_stops_at_the_first_holder_of_its_role(session, two_levels):
    assert resolve(session, two_levels["zhang"], "superior_chain", role="sales_manager") == \
        id_of(two_levels, "wang")


def test_inactive_superiors_are_skipped(session, two_levels):
    org.set_active(session, two_levels["wang"].user_id, False)
    assert resolve(session, two_levels["zhang"], "superior_chain", level=2) == \
        id_of(two_levels, "admin")
    assert resolve(session, two_levels["zhang"], "superior", level=1) == []


def test_named_users_approve_in_the_order_listed_and_inactive_ones_are_skipped(session,
                                                                               people):
    org.set_active(session, people["zhao"].user_id, False)
    assert resolve(session, people["zhang"], "users", users=("qian", "zhao", "li", "nobody")) \
        == id_of(people, "qian", "li")


def test_a_role_step_asks_every_active_holder(session, people):
    roles.set_user_roles(session, people["zhao"].user_id, ["sales_rep", "finance"])
    assert resolve(session, people["zhang"], "role", role="finance") == \
        sorted(id_of(people, "qian", "zhao"))


def test_the_submitter_chooses_active_users(session, people):
    org.set_active(session, people["li"].user_id, False)
    chosen = id_of(people, "zhao", "li", "qian")
    assert resolve(session, people["zhang"], "submitter_chooses", chosen) == \
        id_of(people, "zhao", "qian")


# -- submitting -------------------------------------------------------------------------------
def test_submitting_starts_the_first_step_and_tells_its_approvers(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    approval = flows.get(approval_id)
    assert (approval["status"], approval["step"], approval["round"]) == ("pending", 0, 1)
    assert flows.states(approval_id) == {("wang", 0): "active"}
    assert flows.actions(approval_id) == ["submit"]
    assert flows.notified("wang", "approval_submitted", approval_id)


def test_a_record_not_meeting_the_condition_is_refused(deals, flows):
    row = deals.make(amount=SMALL)
    with pytest.raises(ValidationFailed) as caught:
        flows.submit(row["id"], "large_opportunity")
    assert set(caught.value.fields) == {"flow"}


def test_only_flows_whose_condition_holds_are_offered(deals, session, registry):
    obj = registry.object("opportunity")
    small, large = deals.make(amount=SMALL), deals.make(amount=LARGE)
    assert "large_opportunity" not in {f.name for f in approval_rules.submittable(
        session, registry, obj, small)}
    assert "large_opportunity" in {f.name for f in approval_rules.submittable(
        session, registry, obj, large)}


def test_submitting_needs_edit_permission(deals, flows):
    row = deals.make(amount=LARGE)
    with pytest.raises((RecordNotFound, PermissionDenied)):
        flows.submit(row["id"], "large_opportunity", who="li")


def test_a_record_is_in_one_approval_at_a_time(deals, flows):
    row = deals.make(amount=LARGE)
    flows.submit(row["id"], "large_opportunity")
    with pytest.raises(ApprovalConflict):
        flows.submit(row["id"], "board_any")


def test_the_submitter_must_choose_the_approvers_of_a_chosen_step(deals, flows):
    row = deals.make()
    with pytest.raises(ValidationFailed) as caught:
        flows.submit(row["id"], "picked")
    assert set(caught.value.fields) == {"chosen.picked"}


def test_the_chosen_approvers_get_the_step(deals, flows, people):
    row = deals.make()
    approval_id = flows.submit(row["id"], "picked",
                               chosen={"picked": id_of(people, "li", "qian")})
    assert flows.states(approval_id) == {("li", 0): "active", ("qian", 0): "active"}


# -- modes ------------------------------------------------------------------------------------
def test_an_all_step_waits_for_every_approver(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "board_all")
    flows.act("approve", approval_id, "wang")
    assert flows.get(approval_id)["step"] == 0
    assert flows.states(approval_id) == {("wang", 0): "approved", ("qian", 0): "active"}
    flows.act("approve", approval_id, "qian")
    assert flows.get(approval_id)["step"] == 1
    assert flows.states(approval_id)[("admin", 1)] == "active"


def test_an_any_step_is_settled_by_the_first_approval(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "board_any")
    flows.act("approve", approval_id, "qian")
    assert flows.states(approval_id) == {("wang", 0): "cancelled", ("qian", 0): "approved",
                                         ("admin", 1): "active"}
    with pytest.raises(ApprovalConflict):
        flows.act("approve", approval_id, "wang")


def test_one_rejection_in_an_all_step_rejects_the_approval(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "board_all")
    flows.act("approve", approval_id, "wang")
    flows.act("reject", approval_id, "qian", comment="价格太低")
    assert flows.get(approval_id)["status"] == "rejected"
    assert flows.actions(approval_id)[-2:] == ["reject", "rejected"]


def test_passing_the_last_step_approves_and_sets_the_flows_fields(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("approve", approval_id, "wang")
    flows.act("approve", approval_id, "qian")
    approval = flows.get(approval_id)
    assert approval["status"] == "approved" and approval["finished_at"] is not None
    assert deals.get(row["id"])["approval_status"] == "approved"


def test_a_rejection_sets_the_flows_fields(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("reject", approval_id, "wang")
    assert deals.get(row["id"])["approval_status"] == "rejected"


# -- fields set on submit and withdraw ------------------------------------------------------
def test_submitting_sets_the_flows_submit_fields(deals, flows):
    row = deals.make(amount=LARGE)
    flows.submit(row["id"], "large_opportunity")
    stored = deals.get(row["id"])
    assert (stored["approval_status"], stored["version"]) == ("pending", row["version"] + 1)


def test_withdrawing_sets_the_flows_withdraw_fields(deals, flows):
    row = deals.make(amount=LARGE)
    flows.act("withdraw", flows.submit(row["id"], "large_opportunity"), "zhang")
    assert deals.get(row["id"])["approval_status"] == "withdrawn"


def test_resubmitting_after_a_rejection_sets_the_submit_fields_again(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("reject", approval_id, "wang")
    flows.submit(row["id"], "large_opportunity")
    assert deals.get(row["id"])["approval_status"] == "pending"


@pytest.mark.parametrize(("flow", "outcome"), [("nobody_rejects", "rejected"),
                                               ("nobody_approves", "approved")])
def test_an_outcome_reached_at_submit_wins_over_the_submit_fields(deals, flows, flow, outcome):
    row = deals.make()
    approval_id = flows.submit(row["id"], flow)
    assert flows.get(approval_id)["status"] == outcome
    assert deals.get(row["id"])["approval_status"] == outcome


@pytest.mark.parametrize("value", ["pending", "withdrawn"])
def test_a_user_cannot_set_the_submit_and_withdraw_fields(deals, session, registry, zhang,
                                                          value):
    row = deals.make(amount=LARGE)
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "opportunity", row["id"],
                              {"approval_status": value}, actor=zhang)
    assert set(caught.value.fields) == {"approval_status"}


def test_the_submit_and_withdraw_fields_are_the_approval_engines(registry):
    flow = build_approval_flow(_flow("marks", [_step("final", ADMIN)],
                                     on_submit={"remark": "审批中"},
                                     on_withdraw={"lost_reason": "other"}))
    owned = owned_fields(registry.objects, (), [flow])["opportunity"]
    assert (owned["remark"], owned["lost_reason"]) == ("approvals", "approvals")


# -- nobody to approve --------------------------------------------------------------------
def test_a_step_without_approvers_can_pass_by_itself(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "nobody_passes")
    assert flows.get(approval_id)["step"] == 1
    assert flows.states(approval_id) == {("qian", 1): "active"}
    assert flows.actions(approval_id) == ["submit", "auto_approved"]


def test_a_step_without_approvers_can_go_to_the_administrators(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "nobody_goes_to_admin")
    assert flows.states(approval_id) == {("admin", 0): "active"}
    assert flows.actions(approval_id) == ["submit", "escalated"]


def test_a_step_without_approvers_can_reject(deals, flows):
    row = deals.make()
    approval_id = flows.submit(row["id"], "nobody_rejects")
    assert flows.get(approval_id)["status"] == "rejected"
    assert flows.actions(approval_id) == ["submit", "auto_rejected", "rejected"]
    assert deals.get(row["id"])["approval_status"] == "rejected"


def test_a_flow_whose_steps_all_pass_by_themselves_is_approved_at_once(deals, flows, session,
                                                                       people):
    roles.set_user_roles(session, people["qian"].user_id, ["sales_rep"])
    session.commit()
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("approve", approval_id, "wang")
    assert flows.get(approval_id)["status"] == "approved"  # finance: nobody, auto_approve


# -- reject and resubmit ------------------------------------------------------------------
def test_resubmitting_starts_again_from_the_rejecting_step(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("approve", approval_id, "wang")
    flows.act("reject", approval_id, "qian", comment="补充合同条款")
    again = flows.submit(row["id"], "large_opportunity", comment="已补充")
    assert again == approval_id
    approval = flows.get(approval_id)
    assert (approval["status"], approval["round"], approval["step"]) == ("pending", 2, 1)
    assert flows.states(approval_id) == {("qian", 1): "active"}
    assert flows.actions(approval_id)[-1] == "resubmit"


def test_resubmitting_starts_again_from_the_first_step(deals, flows):
    row = deals.make()
    approval_id = flows.submit(row["id"], "restart")
    flows.act("approve", approval_id, "wang")
    flows.act("reject", approval_id, "qian")
    flows.submit(row["id"], "restart")
    approval = flows.get(approval_id)
    assert (approval["round"], approval["step"]) == (2, 0)
    assert flows.states(approval_id) == {("wang", 0): "active"}
    assert flows.states(approval_id, 1) == {("wang", 0): "approved", ("qian", 1): "rejected"}


def test_resubmitting_keeps_the_approvers_chosen_before(deals, flows, people):
    row = deals.make()
    approval_id = flows.submit(row["id"], "picked", chosen={"picked": id_of(people, "li")})
    flows.act("reject", approval_id, "li")
    flows.submit(row["id"], "picked")
    assert flows.states(approval_id) == {("li", 0): "active"}


def test_resubmitting_may_choose_other_approvers(deals, flows, people):
    row = deals.make()
    approval_id = flows.submit(row["id"], "picked", chosen={"picked": id_of(people, "li")})
    flows.act("reject", approval_id, "li")
    flows.submit(row["id"], "picked", chosen={"picked": id_of(people, "zhao")})
    assert flows.states(approval_id) == {("zhao", 0): "active"}


def test_a_rejected_record_is_editable_again(deals, flows, session, registry, zhang):
    row = deals.make(amount=LARGE)
    flows.act("reject", flows.submit(row["id"], "large_opportunity"), "wang")
    updated = records.update_record(session, registry, "opportunity", row["id"],
                                    {"remark": "改了价格"}, actor=zhang)
    assert updated["remark"] == "改了价格"


# -- withdraw -------------------------------------------------------------------------------
def test_the_submitter_withdraws_and_the_approvers_are_told(deals, flows):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("withdraw", approval_id, "zhang", comment="先不提交")
    assert flows.get(approval_id)["status"] == "withdrawn"
    assert flows.states(approval_id) == {("wang", 0): "cancelled"}
    assert flows.notified("wang", "approval_withdrawn", approval_id)


def test_only_the_submitter_may_withdraw(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    with pytest.raises(PermissionDenied):
        flows.act("withdraw", approval_id, "wang")
    assert flows.get(approval_id)["status"] == "pending"


def test_a_withdrawn_record_can_be_submitted_anew(deals, flows):
    row = deals.make(amount=LARGE)
    first = flows.submit(row["id"], "large_opportunity")
    flows.act("withdraw", first, "zhang")
    second = flows.submit(row["id"], "large_opportunity")
    assert second != first and flows.get(second)["round"] == 1


# -- hand over and add approver ---------------------------------------------------------------
def test_handing_over_gives_the_task_to_another_user(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("hand_over", approval_id, "wang", to_user=people["li"].user_id, comment="出差")
    assert flows.states(approval_id) == {("wang", 0): "handed_over", ("li", 0): "active"}
    assert flows.tasks(approval_id, user_id=people["li"].user_id)[0]["kind"] == "handed_over"
    assert flows.notified("li", "approval_handed_over", approval_id)
    with pytest.raises(ApprovalConflict):
        flows.act("approve", approval_id, "wang")
    flows.act("approve", approval_id, "li")
    assert flows.get(approval_id)["step"] == 1
    event = approvals.timeline(flows.session, [approval_id])[1]
    assert event["action"] == "hand_over" and event["details"] == {"to": people["li"].user_id}


def test_handing_over_to_an_approver_of_the_step_is_refused(deals, flows, people):
    approval_id = flows.submit(deals.make()["id"], "board_any")
    with pytest.raises(ValidationFailed) as caught:
        flows.act("hand_over", approval_id, "wang", to_user=people["qian"].user_id)
    assert set(caught.value.fields) == {"to_user"}


def test_an_approver_added_before_me_answers_first_then_i_do(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
              position="before")
    added = flows.tasks(approval_id, user_id=people["zhao"].user_id)[0]
    mine = flows.tasks(approval_id, user_id=people["wang"].user_id)[0]
    assert (added["status"], added["kind"]) == ("active", "added_before")
    assert (mine["status"], mine["waits_for"]) == ("waiting", added["id"])
    with pytest.raises(ApprovalConflict):
        flows.act("approve", approval_id, "wang")
    flows.act("approve", approval_id, "zhao")
    assert flows.states(approval_id) == {("zhao", 0): "approved", ("wang", 0): "active"}
    flows.act("approve", approval_id, "wang")
    assert flows.get(approval_id)["step"] == 1


def test_an_approver_added_after_me_answers_once_i_have(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
              position="after")
    added = flows.tasks(approval_id, user_id=people["zhao"].user_id)[0]
    mine = flows.tasks(approval_id, user_id=people["wang"].user_id)[0]
    assert (added["status"], added["kind"], added["waits_for"]) == \
        ("waiting", "added_after", mine["id"])
    flows.act("approve", approval_id, "wang")
    assert flows.states(approval_id) == {("wang", 0): "approved", ("zhao", 0): "active"}
    assert flows.get(approval_id)["step"] == 0
    flows.act("approve", approval_id, "zhao")
    assert flows.get(approval_id)["step"] == 1


def test_an_approver_added_after_me_still_answers_in_an_any_step(deals, flows, people):
    approval_id = flows.submit(deals.make()["id"], "board_any")
    flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
              position="after")
    flows.act("approve", approval_id, "wang")
    assert flows.states(approval_id) == {("wang", 0): "approved", ("qian", 0): "cancelled",
                                         ("zhao", 0): "active"}


def test_adding_an_approver_is_on_the_timeline(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
              position="before", comment="请赵强先看")
    event = approvals.timeline(flows.session, [approval_id])[-1]
    assert (event["action"], event["comment"], event["details"]) == \
        ("add_before", "请赵强先看", {"user": people["zhao"].user_id})


def test_a_position_other_than_before_or_after_is_refused(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    with pytest.raises(ValidationFailed):
        flows.act("add_approver", approval_id, "wang", user_id=people["zhao"].user_id,
                  position="instead")


def test_only_an_approver_with_an_active_task_may_act(deals, flows, people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    with pytest.raises(ApprovalConflict):
        flows.act("approve", approval_id, "qian")  # finance: the next step, not yet
    with pytest.raises(ApprovalConflict):
        flows.act("hand_over", approval_id, "li", to_user=people["zhao"].user_id)


# -- a decided approval -------------------------------------------------------------------
@pytest.mark.parametrize("action", ["approve", "reject", "hand_over", "add_approver"])
def test_a_decided_approval_refuses_further_actions(deals, flows, people, action):
    approval_id = flows.submit(deals.make()["id"], "board_any")
    flows.act("reject", approval_id, "qian")
    extra = {"hand_over": {"to_user": people["li"].user_id},
             "add_approver": {"user_id": people["li"].user_id, "position": "after"}}
    with pytest.raises(ApprovalConflict):
        flows.act(action, approval_id, "wang", **extra.get(action, {}))


def test_a_decided_approval_cannot_be_withdrawn(deals, flows):
    approval_id = flows.submit(deals.make()["id"], "board_any")
    flows.act("reject", approval_id, "qian")
    with pytest.raises(ApprovalConflict):
        flows.act("withdraw", approval_id, "zhang")


# -- the lock ---------------------------------------------------------------------------------
def test_a_pending_record_cannot_be_changed(deals, flows, session, registry, zhang):
    row = deals.make(amount=LARGE)
    flows.submit(row["id"], "large_opportunity")
    with pytest.raises(RecordLocked):
        records.update_record(session, registry, "opportunity", row["id"],
                              {"remark": "偷偷改"}, actor=zhang)


def test_a_pending_record_cannot_be_deleted(deals, flows, session, registry, zhang):
    row = deals.make(amount=LARGE)
    flows.submit(row["id"], "large_opportunity")
    with pytest.raises(RecordLocked):
        records.delete(session, registry, "opportunity", row["id"], actor=zhang)


def test_an_approved_record_is_unlocked(deals, flows, session, registry, zhang):
    row = deals.make(amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity")
    flows.act("approve", approval_id, "wang")
    flows.act("approve", approval_id, "qian")
    records.update_record(session, registry, "opportunity", row["id"], {"remark": "签约"},
                          actor=zhang)
    records.delete(session, registry, "opportunity", row["id"], actor=zhang)


def test_a_withdrawn_record_is_unlocked(deals, flows, session, registry, zhang):
    row = deals.make(amount=LARGE)
    flows.act("withdraw", flows.submit(row["id"], "large_opportunity"), "zhang")
    records.delete(session, registry, "opportunity", row["id"], actor=zhang)


# -- the field-change trigger -----------------------------------------------------------------
def test_a_change_meeting_the_condition_starts_the_approval(deals, flows, session, registry,
                                                            zhang):
    row = deals.make(amount=SMALL)
    records.update_record(session, registry, "opportunity", row["id"], {"amount": HUGE},
                          actor=zhang)
    session.commit()
    found = approval_rules.pending_for(session, registry.object("opportunity"), row["id"])
    assert (found["flow"], found["trigger"], found["submitter_id"]) == \
        ("big_change", "field_change", zhang.user_id)
    assert flows.states(found["id"]) == {("qian", 0): "active"}
    assert deals.get(row["id"])["amount"] == HUGE


def test_a_change_starting_an_approval_answers_the_record_its_submit_fields_set(
        deals, session, registry, zhang):
    row = deals.make(amount=SMALL)
    updated = records.update_record(session, registry, "opportunity", row["id"],
                                    {"amount": HUGE}, actor=zhang)
    session.commit()
    stored = deals.get(row["id"])
    assert (updated["approval_status"], updated["version"]) == ("pending", stored["version"])


def test_a_change_not_meeting_the_condition_starts_nothing(deals, session, registry, zhang):
    row = deals.make(amount=SMALL)
    records.update_record(session, registry, "opportunity", row["id"], {"amount": LARGE},
                          actor=zhang)
    assert approval_rules.pending_for(session, registry.object("opportunity"), row["id"]) is None


def test_a_change_of_other_fields_starts_nothing(deals, session, registry, zhang):
    row = deals.make(amount=HUGE)
    records.update_record(session, registry, "opportunity", row["id"], {"remark": "跟进"},
                          actor=zhang)
    assert approval_rules.pending_for(session, registry.object("opportunity"), row["id"]) is None


# -- notifications and the inbox --------------------------------------------------------------
def test_the_submitter_is_told_of_the_approval(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("approve", approval_id, "wang")
    assert flows.notified("qian", "approval_submitted", approval_id)
    assert not flows.notified("zhang", "approval_approved", approval_id)
    flows.act("approve", approval_id, "qian")
    assert flows.notified("zhang", "approval_approved", approval_id)


def test_the_submitter_is_told_of_the_rejection(deals, flows):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    flows.act("reject", approval_id, "wang")
    assert flows.notified("zhang", "approval_rejected", approval_id)
    assert not flows.notified("wang", "approval_rejected", approval_id)


def test_a_submitter_without_a_superior_is_sent_to_the_administrators(deals, flows):
    row = deals.make(actor=flows.people["wang"], amount=LARGE)
    approval_id = flows.submit(row["id"], "large_opportunity", who="wang")
    assert flows.states(approval_id) == {("admin", 0): "active"}
    assert flows.notified("admin", "approval_submitted", approval_id)
    assert not flows.notified("wang", "approval_submitted", approval_id)


def test_the_inbox_holds_pending_processed_and_submitted_approvals(deals, flows, session,
                                                                   people):
    approval_id = flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity")
    ids = lambda who, box: [i["id"] for i in approvals.inbox(session, people[who], box)]  # noqa: E731
    assert ids("wang", "pending") == [approval_id]
    assert ids("zhang", "submitted") == [approval_id]
    flows.act("approve", approval_id, "wang")
    assert ids("wang", "pending") == [] and ids("wang", "processed") == [approval_id]
    assert ids("qian", "pending") == [approval_id]


def test_an_approval_is_seen_by_its_submitter_and_approvers_only(deals, flows, people):
    approval = flows.get(flows.submit(deals.make(amount=LARGE)["id"], "large_opportunity"))
    assert approvals.may_view(flows.session, people["zhang"], approval)
    assert approvals.may_view(flows.session, people["wang"], approval)
    assert approvals.may_view(flows.session, people["admin"], approval)
    assert not approvals.may_view(flows.session, people["li"], approval)
