"""Stage processes at run time (engine): where a new record starts, what a move needs,
the move and its history, key events and the win rate, stage approval."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy.orm import Session

from metacrm.engine.access import org
from metacrm.engine.actor import Actor
from metacrm.engine.errors import (
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    StageRefused,
    StaleVersion,
    ValidationFailed,
)
from metacrm.engine.flows import approvals, stage_moves, stages, todos
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records

CLOSE = dt.date(2031, 6, 30)


@pytest.fixture
def engine(flows_engine):
    return flows_engine


@pytest.fixture
def zhang(people) -> Actor:
    return people["zhang"]


class Deals:
    """Opportunities (and the customer and contact they need) made through the records
    service and committed, as a user would."""

    def __init__(self, session: Session, registry: Registry, owner: Actor):
        self.session, self.registry, self.owner = session, registry, owner
        self.numbers = itertools.count(1)

    def customer(self, actor: Actor) -> int:
        return records.create(self.session, self.registry, "customer",
                              {"name": f"客户 {next(self.numbers)}"}, actor=actor)["id"]

    def contact(self, customer: int, actor: Actor | None = None) -> int:
        return records.create(self.session, self.registry, "contact",
                              {"name": "刘强", "customer": customer},
                              actor=actor or self.owner)["id"]

    def make(self, actor: Actor | None = None, *, complete: bool = False, **values) -> dict:
        """``complete``: with contact, amount and close date, so every stage may be entered.
        A record made in a named stage is placed there by the stage engine (a user starts
        one only in a start stage of its process)."""
        actor = actor or self.owner
        customer = self.customer(actor)
        if complete:
            values = {"contact": self.contact(customer, actor), "amount": 120000,
                      "close_date": CLOSE, **values}
        row = records.create(self.session, self.registry, "opportunity",
                             {"name": f"商机 {next(self.numbers)}", "customer": customer,
                              **values}, actor=actor,
                             by=stages.OWNER if "stage" in values else records.RECORD)
        self.session.commit()
        return row

    def get(self, record_id: int, actor: Actor | None = None) -> dict:
        return records.get(self.session, self.registry, "opportunity", record_id,
                           actor=actor or self.owner)

    def move(self, record_id: int, to: str, actor: Actor | None = None,
             **kw) -> stage_moves.MoveResult:
        result = stage_moves.move(self.session, self.registry, "opportunity", record_id, to,
                             actor=actor or self.owner, **kw)
        self.session.commit()
        return result

    def tick(self, record_id: int, *items: str) -> None:
        for item in items:
            stages.tick_work(self.session, self.registry, "opportunity", record_id, item,
                             actor=self.owner)
        self.session.commit()

    def event(self, record_id: int, event: str, *, done: bool = True,
              attachment: tuple[str, str, bytes] | None = None) -> None:
        stages.complete_event(self.session, self.registry, "opportunity", record_id, event,
                              actor=self.owner, done=done, attachment=attachment)
        self.session.commit()

    def state(self, record_id: int) -> stages.PathState:
        obj = self.registry.object("opportunity")
        return stages.state(self.session, self.registry, obj, self.get(record_id))

    def history(self, record_id: int) -> list[dict]:
        return stages.history(self.session, self.registry.object("opportunity"), record_id)


@pytest.fixture
def deals(session, registry, zhang) -> Deals:
    return Deals(session, registry, zhang)


def kinds(missing) -> set[tuple[str, str]]:
    return {(m.kind, m.name) for m in missing}


def refused(deals: Deals, record_id: int, to: str, **kw) -> set[tuple[str, str]]:
    with pytest.raises(StageRefused) as caught:
        deals.move(record_id, to, **kw)
    deals.session.rollback()
    return kinds(caught.value.missing)


# -- a new record --------------------------------------------------------------------------
def test_a_new_record_starts_in_the_first_stage_with_its_win_rate(deals, zhang):
    row = deals.make()
    assert row["stage"] == "qualify" and float(row["win_rate"]) == 10
    [entry] = deals.history(row["id"])
    assert (entry["process"], entry["stage"], entry["direction"]) == \
        ("opportunity_standard", "qualify", "start")
    assert entry["from_stage"] is None and entry["left_at"] is None
    assert entry["entered_by"] == zhang.user_id


def test_the_business_type_chooses_the_process(deals, registry):
    row = deals.make(business_type="project")
    assert row["stage"] == "qualify" and float(row["win_rate"]) == 5
    assert deals.state(row["id"]).process.name == "opportunity_project"
    assert deals.history(row["id"])[0]["process"] == "opportunity_project"


def test_a_stage_of_another_process_is_refused_on_creation(deals):
    with pytest.raises(ValidationFailed) as caught:
        deals.make(business_type="standard", stage="tender", complete=True)
    assert set(caught.value.fields) == {"stage"}


def test_a_refusal_on_creation_names_the_stage_hook(deals):
    with pytest.raises(ValidationFailed) as caught:
        deals.make(business_type="standard", stage="tender", complete=True)
    assert caught.value.hook == "stages.first_stage"


def test_creating_in_a_later_stage_needs_its_and_the_earlier_stages_required_fields(deals):
    with pytest.raises(ValidationFailed) as caught:
        deals.make(stage="proposal")
    assert set(caught.value.fields) == {"contact", "amount", "close_date"}


def test_a_record_created_in_a_later_stage_has_that_stages_win_rate(deals):
    row = deals.make(stage="proposal", complete=True)
    assert row["stage"] == "proposal" and float(row["win_rate"]) == 50
    assert deals.history(row["id"])[0]["stage"] == "proposal"


def test_a_new_record_gives_its_owner_the_stage_work_with_due_dates(deals, session, zhang):
    row = deals.make()
    [todo] = [t for t in todos.open_todos(session, zhang.user_id, kind="stage_work")
              if t["record_id"] == row["id"]]
    assert (todo["stage"], todo["item"]) == ("qualify", "confirm_contact")
    assert dt.timedelta(days=2, hours=23) < todo["due_at"] - todo["created_at"] <= \
        dt.timedelta(days=3, seconds=1)


# -- what a move needs --------------------------------------------------------------------
def test_the_path_lists_the_field_and_the_work_missing_to_move_on(deals):
    row = deals.make()
    found = deals.state(row["id"])
    assert found.current.name == "qualify" and found.next.name == "needs"
    assert kinds(found.missing) == {("work", "confirm_contact"), ("field", "contact")}


def test_the_path_lists_the_key_events_missing_to_move_on(deals):
    row = deals.make(stage="needs", complete=True)
    assert kinds(deals.state(row["id"]).missing) == {("work", "needs_survey"),
                                                     ("event", "demo")}


def test_the_path_lists_the_stage_approval_missing_to_move_on(deals):
    row = deals.make(business_type="project", stage="tender", complete=True)
    missing = deals.state(row["id"]).missing
    assert kinds(missing) == {("work", "bid_submitted"), ("event", "bid_document"),
                              ("approval", "tender_review")}


def test_a_move_is_refused_with_every_requirement_missing(deals):
    row = deals.make()
    assert refused(deals, row["id"], "needs") == {("work", "confirm_contact"),
                                                  ("field", "contact")}
    assert deals.get(row["id"])["stage"] == "qualify"


def test_a_move_past_several_stages_needs_the_fields_of_each(deals):
    row = deals.make()
    deals.tick(row["id"], "confirm_contact")
    assert {m for m in refused(deals, row["id"], "proposal") if m[0] == "field"} == {
        ("field", "contact"), ("field", "amount"), ("field", "close_date")}


def test_a_stage_with_work_or_key_events_is_not_skipped(deals):
    row = deals.make(complete=True)
    deals.tick(row["id"], "confirm_contact")
    assert refused(deals, row["id"], "proposal") == {("stage", "needs")}


def test_a_stage_with_an_approval_is_not_skipped(deals):
    row = deals.make(business_type="project", stage="proposal", complete=True)
    deals.event(row["id"], "solution_review")
    assert refused(deals, row["id"], "negotiation") == {("stage", "tender")}
    assert deals.get(row["id"])["stage"] == "proposal"


def test_fields_given_with_the_move_meet_the_requirement(deals):
    row = deals.make()
    deals.tick(row["id"], "confirm_contact")
    contact = deals.contact(row["customer"])
    moved = deals.move(row["id"], "needs", values={"contact": contact})
    assert moved.moved and moved.record["stage"] == "needs"
    assert deals.get(row["id"])["contact"] == contact


def test_work_not_ticked_refuses_the_move(deals):
    row = deals.make(complete=True)
    assert refused(deals, row["id"], "needs") == {("work", "confirm_contact")}


def test_a_required_key_event_not_done_refuses_the_move(deals):
    row = deals.make(stage="needs", complete=True)
    deals.tick(row["id"], "needs_survey")
    assert refused(deals, row["id"], "proposal") == {("event", "demo")}


def test_moving_to_lost_needs_the_lost_reason(deals):
    row = deals.make()
    assert refused(deals, row["id"], "lost") == {("reason", "lost_reason")}
    moved = deals.move(row["id"], "lost", values={"lost_reason": "price"})
    assert moved.record["stage"] == "lost" and moved.record["lost_reason"] == "price"
    assert float(moved.record["win_rate"]) == 0


def test_a_stage_the_process_does_not_have_is_refused(deals):
    row = deals.make()
    with pytest.raises(ValidationFailed) as caught:
        deals.move(row["id"], "tender")
    assert set(caught.value.fields) == {"stage"}


# -- moving ----------------------------------------------------------------------------------
def test_a_move_with_its_requirements_met_enters_the_stage_and_records_it(deals, zhang):
    row = deals.make(complete=True)
    deals.tick(row["id"], "confirm_contact")
    moved = deals.move(row["id"], "needs")
    assert moved.moved and moved.approval_id is None
    assert deals.get(row["id"])["stage"] == "needs"
    assert float(deals.get(row["id"])["win_rate"]) == 30
    first, second = deals.history(row["id"])
    assert first["left_at"] is not None and first["left_by"] == zhang.user_id
    assert (second["stage"], second["from_stage"], second["direction"]) == \
        ("needs", "qualify", "forward")
    assert second["left_at"] is None


def test_leaving_a_stage_closes_its_work_todos_and_opens_the_next(deals, session, zhang):
    row = deals.make(complete=True)
    deals.tick(row["id"], "confirm_contact")
    deals.move(row["id"], "needs")
    open_items = {(t["stage"], t["item"]) for t in todos.open_todos(
        session, zhang.user_id, kind="stage_work") if t["record_id"] == row["id"]}
    assert open_items == {("needs", "needs_survey")}


def test_the_win_rate_rises_with_each_key_events_share(deals):
    row = deals.make(stage="needs", complete=True)
    deals.event(row["id"], "demo")
    assert float(deals.get(row["id"])["win_rate"]) == 40
    assert deals.state(row["id"]).win_rate == 40
    deals.event(row["id"], "demo", done=False)
    assert float(deals.get(row["id"])["win_rate"]) == 30


def test_a_key_event_needing_a_document_is_done_only_with_one(deals, session, registry):
    row = deals.make(stage="proposal", complete=True)
    with pytest.raises(ValidationFailed) as caught:
        deals.event(row["id"], "proposal_sent")
    assert set(caught.value.fields) == {"attachment"}
    session.rollback()
    deals.event(row["id"], "proposal_sent", attachment=("方案.pdf", "application/pdf", b"%PDF"))
    assert float(deals.get(row["id"])["win_rate"]) == 60
    check = stages.checks(session, registry.object("opportunity"), row["id"],
                          "proposal")[("event", "proposal_sent")]
    assert check["attachment_name"] == "方案.pdf"
    assert stages.attachment(session, check["attachment_id"])["content"] == b"%PDF"


def test_entering_a_stage_sets_its_rate_plus_the_events_already_done_there(deals):
    row = deals.make(stage="needs", complete=True)
    deals.event(row["id"], "demo")
    deals.move(row["id"], "qualify")
    deals.tick(row["id"], "confirm_contact")
    deals.move(row["id"], "needs")
    assert float(deals.get(row["id"])["win_rate"]) == 40


def test_moving_back_needs_nothing_and_is_recorded(deals, zhang):
    row = deals.make(stage="needs", complete=True)
    moved = deals.move(row["id"], "qualify")
    assert moved.moved and moved.record["stage"] == "qualify"
    assert float(moved.record["win_rate"]) == 10
    first, second = deals.history(row["id"])
    assert first["left_at"] is not None and first["left_by"] == zhang.user_id
    assert (second["stage"], second["from_stage"], second["direction"]) == \
        ("qualify", "needs", "back")


def test_a_won_record_can_be_reopened(deals):
    row = deals.make(stage="won", complete=True)
    assert float(row["win_rate"]) == 100
    assert deals.state(row["id"]).next is None
    moved = deals.move(row["id"], "negotiation")
    assert moved.record["stage"] == "negotiation" and float(moved.record["win_rate"]) == 80
    assert deals.history(row["id"])[-1]["direction"] == "back"


def test_reopening_needs_only_the_fields_of_the_stage_entered(deals, session, registry):
    row = deals.make(complete=True, stage="won")
    obj = registry.object("opportunity")
    process = registry.stage_processes["opportunity_standard"]
    blank = {**row, "amount": None, "contact": None}
    assert kinds(stages.requirements(session, registry, obj, blank, process,
                                     process.by_name["proposal"])) == {("field", "amount")}


def test_a_move_from_a_stale_version_is_refused(deals):
    row = deals.make(stage="needs", complete=True)
    with pytest.raises(StaleVersion):
        deals.move(row["id"], "qualify", version=row["version"] - 1)


def test_moving_to_the_current_stage_is_refused(deals):
    row = deals.make()
    with pytest.raises(ValidationFailed) as caught:
        deals.move(row["id"], "qualify")
    assert set(caught.value.fields) == {"stage"}


# -- writes outside a move ------------------------------------------------------------------
def test_the_stage_field_is_not_written_directly(deals, session, registry, zhang):
    row = deals.make(complete=True)
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "opportunity", row["id"],
                              {"stage": "won"}, actor=zhang)
    assert set(caught.value.fields) == {"stage"}


def test_the_win_rate_is_not_written_directly(deals, session, registry, zhang):
    row = deals.make()
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "opportunity", row["id"],
                              {"win_rate": 90}, actor=zhang)
    assert set(caught.value.fields) == {"win_rate"}


def test_a_business_type_whose_process_lacks_the_stage_is_refused(deals, session, registry,
                                                                  zhang):
    row = deals.make(business_type="project", stage="tender", complete=True)
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "opportunity", row["id"],
                              {"business_type": "standard"}, actor=zhang)
    assert set(caught.value.fields) == {"business_type"}


def test_a_business_type_whose_process_has_the_stage_is_accepted(deals, session, registry,
                                                                 zhang):
    row = deals.make(business_type="project", stage="proposal", complete=True)
    updated = records.update_record(session, registry, "opportunity", row["id"],
                                    {"business_type": "standard"}, actor=zhang)
    assert (updated["business_type"], updated["stage"]) == ("standard", "proposal")


def test_other_fields_are_still_edited_as_usual(deals, session, registry, zhang):
    row = deals.make()
    updated = records.update_record(session, registry, "opportunity", row["id"],
                                    {"remark": "先报价"}, actor=zhang)
    assert updated["remark"] == "先报价" and updated["stage"] == "qualify"


def test_another_rep_may_not_move_the_record(deals, people):
    row = deals.make(stage="needs", complete=True)
    with pytest.raises((RecordNotFound, PermissionDenied)):
        deals.move(row["id"], "qualify", actor=people["li"])


def test_the_reps_manager_may_move_the_record(deals, people):
    row = deals.make(stage="needs", complete=True)
    moved = deals.move(row["id"], "qualify", actor=people["wang"])
    assert moved.moved
    assert deals.history(row["id"])[-1]["entered_by"] == people["wang"].user_id


def test_work_is_ticked_only_by_those_who_may_edit(deals, session, registry, people):
    row = deals.make()
    with pytest.raises((RecordNotFound, PermissionDenied)):
        stages.tick_work(session, registry, "opportunity", row["id"], "confirm_contact",
                         actor=people["zhao"])


# -- stage approval ---------------------------------------------------------------------------
@pytest.fixture
def tender(deals, session, people) -> dict:
    """A project opportunity in the tender stage with its work and key event done, and
    two superiors above its owner (zhang → wang → admin)."""
    org.update_user(session, None, people["wang"].user_id, superior_id=people["admin"].user_id)
    session.commit()
    row = deals.make(business_type="project", stage="tender", complete=True)
    deals.tick(row["id"], "bid_submitted")
    deals.event(row["id"], "bid_document", attachment=("标书.pdf", "application/pdf", b"bid"))
    return row


def decide(session: Session, registry: Registry, approval_id: int, actor: Actor,
           verdict: str = "approve") -> None:
    getattr(approvals, verdict)(session, registry, approval_id, actor=actor)
    session.commit()


def test_leaving_the_tender_stage_starts_its_approval_and_the_record_stays(deals, tender,
                                                                            session):
    moved = deals.move(tender["id"], "negotiation")
    assert not moved.moved and moved.approval_id is not None
    approval = approvals.get(session, moved.approval_id)
    assert (approval["flow"], approval["trigger"], approval["status"]) == \
        ("tender_review", "stage", "pending")
    assert (approval["stage_from"], approval["stage_to"]) == ("tender", "negotiation")
    assert deals.get(tender["id"])["stage"] == "tender"
    assert deals.state(tender["id"]).approval["id"] == moved.approval_id


def test_a_record_waiting_for_its_stage_approval_is_locked(deals, tender, session, registry,
                                                           zhang):
    deals.move(tender["id"], "negotiation")
    with pytest.raises(RecordLocked):
        records.update_record(session, registry, "opportunity", tender["id"],
                              {"remark": "x"}, actor=zhang)
    session.rollback()
    with pytest.raises(RecordLocked):
        deals.move(tender["id"], "proposal")


def test_work_and_key_events_wait_while_the_stage_approval_is_pending(deals, tender):
    deals.move(tender["id"], "negotiation")
    with pytest.raises(RecordLocked):
        deals.tick(tender["id"], "bid_submitted")
    deals.session.rollback()
    with pytest.raises(RecordLocked):
        deals.event(tender["id"], "bid_document", done=False)


def test_the_record_moves_once_both_superiors_approve(deals, tender, session, registry,
                                                      people):
    approval_id = deals.move(tender["id"], "negotiation").approval_id
    decide(session, registry, approval_id, people["wang"])
    assert deals.get(tender["id"])["stage"] == "tender"
    decide(session, registry, approval_id, people["admin"])
    assert approvals.get(session, approval_id)["status"] == "approved"
    row = deals.get(tender["id"])
    assert row["stage"] == "negotiation" and float(row["win_rate"]) == 80
    last = deals.history(tender["id"])[-1]
    assert (last["stage"], last["from_stage"], last["direction"]) == \
        ("negotiation", "tender", "forward")


def test_the_second_superior_is_asked_only_after_the_first(deals, tender, session, people):
    approval_id = deals.move(tender["id"], "negotiation").approval_id
    waiting = {t["user_id"]: t["status"] for t in approvals.tasks(session, approval_id)}
    assert waiting == {people["wang"].user_id: "active", people["admin"].user_id: "waiting"}


def test_a_rejected_stage_approval_leaves_the_record_where_it_was(deals, tender, session,
                                                                  registry, people):
    approval_id = deals.move(tender["id"], "negotiation").approval_id
    decide(session, registry, approval_id, people["wang"], "reject")
    assert approvals.get(session, approval_id)["status"] == "rejected"
    assert deals.get(tender["id"])["stage"] == "tender"
    assert deals.history(tender["id"])[-1]["stage"] == "tender"


def test_moving_on_after_a_rejection_asks_again_in_a_new_round(deals, tender, session,
                                                               registry, people):
    first = deals.move(tender["id"], "negotiation").approval_id
    decide(session, registry, first, people["wang"], "reject")
    again = deals.move(tender["id"], "negotiation")
    assert not again.moved and again.approval_id == first
    assert approvals.get(session, first)["round"] == 2


def test_moving_back_from_the_tender_stage_needs_no_approval(deals, tender):
    moved = deals.move(tender["id"], "proposal")
    assert moved.moved and moved.record["stage"] == "proposal"
