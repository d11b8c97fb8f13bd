"""The JSON API of stage paths, approvals, todos and notifications, over HTTP on SQLite and
PostgreSQL, with the sample flows and the demo company (wang manages zhang; qian is in
finance)."""

from __future__ import annotations

import base64

import pytest
from openapi_spec_validator import validate
from sqlalchemy.orm import Session

from metacrm.engine.flows import stages
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records

from conftest import ApiClient

OPPORTUNITIES = "/api/v1/objects/opportunity/records"
LARGE = 800000  # above the large-opportunity approval's threshold


@pytest.fixture
def engine(flows_engine):
    return flows_engine


@pytest.fixture
def zhang(client_of):
    return client_of("zhang")


@pytest.fixture
def wang(client_of):
    return client_of("wang")


@pytest.fixture
def qian(client_of):
    return client_of("qian")


@pytest.fixture
def customer(zhang) -> int:
    response = zhang.post("/api/v1/objects/customer/records", json={"name": "华为"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def contact(zhang, customer) -> int:
    response = zhang.post("/api/v1/objects/contact/records",
                          json={"name": "李总", "customer": customer})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def opportunity(zhang, customer, engine, people):
    """zhang's opportunity: ``opportunity(**values)`` -> the record as the API gives it. One
    in a named stage is placed there by the stage engine (a user starts in the first)."""
    def make(**values) -> dict:
        values = {"name": "ERP 项目", "customer": customer, "business_type": "standard",
                  **values}
        if "stage" in values:
            with Session(engine) as s, s.begin():
                made = records.create(s, metastore.load_registry(s), "opportunity", values,
                                      actor=people["zhang"], by=stages.OWNER)
            return zhang.get(f"{OPPORTUNITIES}/{made['id']}").get_json()
        response = zhang.post(OPPORTUNITIES, json=values)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def url(record: dict, tail: str = "") -> str:
    return f"{OPPORTUNITIES}/{record['id']}{tail}"


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def submitted(client: ApiClient, record: dict, flow: str = "large_opportunity", **body) -> dict:
    return ok(client.post(url(record, "/approvals"), json={"flow": flow, **body}), 201)


def tender_record(zhang, opportunity, contact) -> dict:
    """A project opportunity in the tender stage with its work and key event done: moving
    it on needs the tender review."""
    record = opportunity(business_type="project", stage="tender", contact=contact,
                         amount=100000, close_date="2027-06-30")
    ok(zhang.post(url(record, "/stage/work"), json={"item": "bid_submitted"}))
    ok(zhang.post(url(record, "/stage/events"), json={
        "event": "bid_document",
        "attachment": {"name": "bid.pdf", "content_type": "application/pdf",
                       "base64": base64.b64encode(b"%PDF-1.7 bid").decode()}}))
    return record


# -- stage paths --------------------------------------------------------------------------
def test_the_stage_state_shows_the_process_the_current_stage_and_what_is_missing(
        zhang, opportunity):
    state = ok(zhang.get(url(opportunity(), "/stage")))
    assert state["process"]["name"] == "opportunity_standard"
    assert [s["name"] for s in state["stages"]] == ["qualify", "needs", "proposal",
                                                    "negotiation", "won", "lost"]
    assert state["stages"][0]["label"] == {"en": "Qualify", "zh": "验证客户"}
    assert state["stages"][4]["type"] == "won" and state["stages"][1]["win_rate"] == 30
    assert state["current"] == "qualify" and state["win_rate"] == 10
    assert state["next"] == "needs" and state["entered_at"]
    assert {(m["kind"], m["name"], m["stage"]) for m in state["missing"]} == {
        ("work", "confirm_contact", "qualify"), ("field", "contact", "needs")}
    assert state["approval_id"] is None
    assert [(h["stage"], h["direction"]) for h in state["history"]] == [("qualify", "start")]


def test_a_record_of_an_object_without_a_process_has_no_stage_state(zhang, customer):
    response = zhang.get(f"/api/v1/objects/customer/records/{customer}/stage")
    assert error_of(response, 404)["code"] == "no_stage_process"


def test_a_move_missing_a_required_field_is_refused_naming_it(zhang, opportunity):
    record = opportunity()
    ok(zhang.post(url(record, "/stage/work"), json={"item": "confirm_contact"}))
    error = error_of(zhang.post(url(record, "/stage"), json={"to": "needs"}), 422)
    assert error["code"] == "stage_refused"
    assert [(m["kind"], m["name"], m["stage"]) for m in error["missing"]] == [
        ("field", "contact", "needs")]
    assert "contact" in error["fields"]


def test_a_move_with_its_requirements_met_answers_the_moved_record(zhang, opportunity,
                                                                    contact):
    record = opportunity()
    ok(zhang.post(url(record, "/stage/work"), json={"item": "confirm_contact"}))
    moved = ok(zhang.post(url(record, "/stage"), json={
        "to": "needs", "values": {"contact": contact}, "version": record["version"]}))
    assert moved["stage"] == "needs" and moved["contact"] == contact
    assert moved["win_rate"] == "30.00"  # a percent field: a decimal string
    state = ok(zhang.get(url(record, "/stage")))
    assert [(h["stage"], h["direction"]) for h in state["history"]] == [
        ("qualify", "start"), ("needs", "forward")]
    assert state["history"][0]["left_by"]["name"] == "张伟"


def test_a_move_with_a_stale_version_is_409(zhang, opportunity, contact):
    record = opportunity(contact=contact)
    ok(zhang.post(url(record, "/stage/work"), json={"item": "confirm_contact"}))
    response = zhang.post(url(record, "/stage"), json={"to": "needs",
                                                       "version": record["version"] - 1})
    assert error_of(response, 409)["code"] == "conflict"


def test_moving_into_lost_needs_the_lost_reason(zhang, opportunity):
    record = opportunity()
    error = error_of(zhang.post(url(record, "/stage"), json={"to": "lost"}), 422)
    assert [(m["kind"], m["name"]) for m in error["missing"]] == [("reason", "lost_reason")]
    lost = ok(zhang.post(url(record, "/stage"), json={"to": "lost",
                                                      "values": {"lost_reason": "price"}}))
    assert lost["stage"] == "lost" and lost["lost_reason"] == "price"


def test_a_move_out_of_a_stage_with_an_approval_answers_202_with_the_approval(
        zhang, wang, opportunity, contact):
    record = tender_record(zhang, opportunity, contact)
    response = zhang.post(url(record, "/stage"), json={"to": "negotiation"})
    body = ok(response, 202)
    assert response.headers["Location"].endswith(f"/api/v1/approvals/{body['approval_id']}")
    assert body["approval"]["flow"] == "tender_review"
    assert body["approval"]["stage_to"] == "negotiation"
    assert ok(zhang.get(url(record)))["stage"] == "tender"
    assert ok(zhang.get(url(record, "/stage")))["approval_id"] == body["approval_id"]
    ok(wang.post(f"/api/v1/approvals/{body['approval_id']}/approve", json={"comment": "好"}))
    assert ok(zhang.get(url(record)))["stage"] == "negotiation"


def test_ticking_work_is_shown_in_the_state_and_can_be_undone(zhang, opportunity):
    record = opportunity()
    state = ok(zhang.post(url(record, "/stage/work"), json={"item": "confirm_contact"}))
    assert [w["item"] for w in state["done"]["work"]] == ["confirm_contact"]
    assert state["done"]["work"][0]["done_by"]["name"] == "张伟"
    assert "confirm_contact" not in {m["name"] for m in state["missing"]}
    state = ok(zhang.post(url(record, "/stage/work"), json={"item": "confirm_contact",
                                                            "done": False}))
    assert state["done"]["work"] == []


def test_unknown_work_is_422(zhang, opportunity):
    response = zhang.post(url(opportunity(), "/stage/work"), json={"item": "nonsense"})
    assert "item" in error_of(response, 422)["fields"]


def test_a_key_event_raises_the_win_rate(zhang, opportunity, contact):
    record = opportunity(stage="needs", contact=contact)
    state = ok(zhang.post(url(record, "/stage/events"), json={"event": "demo"}))
    assert [e["item"] for e in state["done"]["events"]] == ["demo"]
    assert state["win_rate"] == 40
    assert ok(zhang.get(url(record)))["win_rate"] == "40.00"


def test_a_key_event_needing_a_document_is_refused_without_one(zhang, opportunity, contact):
    record = opportunity(stage="proposal", contact=contact, amount=1000,
                         close_date="2027-01-31")
    response = zhang.post(url(record, "/stage/events"), json={"event": "proposal_sent"})
    assert "attachment" in error_of(response, 422)["fields"]


def test_a_key_event_document_may_be_sent_as_base64(zhang, opportunity, contact):
    record = opportunity(stage="proposal", contact=contact, amount=1000,
                         close_date="2027-01-31")
    state = ok(zhang.post(url(record, "/stage/events"), json={
        "event": "proposal_sent", "attachment": {
            "name": "方案.pdf", "content_type": "application/pdf",
            "base64": base64.b64encode(b"%PDF-1.7 proposal").decode()}}))
    assert state["done"]["events"][0]["attachment"]["name"] == "方案.pdf"


def test_a_key_event_document_may_be_uploaded_as_multipart(zhang, opportunity, contact):
    import io

    record = opportunity(stage="proposal", contact=contact, amount=1000,
                         close_date="2027-01-31")
    state = ok(zhang.post(url(record, "/stage/events"), data={
        "event": "proposal_sent", "done": "true",
        "file": (io.BytesIO(b"%PDF-1.7 proposal"), "offer.pdf", "application/pdf")},
        content_type="multipart/form-data"))
    assert state["done"]["events"][0]["attachment"]["name"] == "offer.pdf"
    assert state["win_rate"] == 60


def test_bad_base64_is_422(zhang, opportunity, contact):
    record = opportunity(stage="proposal", contact=contact, amount=1000,
                         close_date="2027-01-31")
    response = zhang.post(url(record, "/stage/events"), json={
        "event": "proposal_sent", "attachment": {"name": "x", "base64": "***"}})
    assert "attachment" in error_of(response, 422)["fields"]


def test_the_stage_of_a_record_outside_the_read_scope_is_404(client_of, opportunity):
    record = opportunity()
    assert client_of("li").get(url(record, "/stage")).status_code == 404
    assert client_of("li").post(url(record, "/stage"), json={"to": "needs"}).status_code == 404


# -- approvals ----------------------------------------------------------------------------
def test_submitting_answers_201_with_the_approval_waiting_for_the_manager(
        zhang, opportunity):
    record = opportunity(amount=LARGE)
    response = zhang.post(url(record, "/approvals"), json={"flow": "large_opportunity",
                                                           "comment": "请审批"})
    approval = ok(response, 201)
    assert response.headers["Location"].endswith(f"/api/v1/approvals/{approval['id']}")
    assert approval["status"] == "pending" and approval["step"]["name"] == "manager"
    assert approval["record_title"] == "ERP 项目" and approval["submitter"]["name"] == "张伟"
    assert [(t["user"]["name"], t["status"]) for t in approval["tasks"]] == [
        ("王经理", "active")]
    assert approval["timeline"][0]["action"] == "submit"
    assert approval["timeline"][0]["comment"] == "请审批"
    assert approval["actions"]["withdraw"] and not approval["actions"]["approve"]


def test_a_record_below_the_condition_cannot_be_submitted(zhang, opportunity):
    response = zhang.post(url(opportunity(amount=1000), "/approvals"),
                          json={"flow": "large_opportunity"})
    assert "flow" in error_of(response, 422)["fields"]


def test_a_stage_approval_is_not_submitted_by_hand(zhang, opportunity):
    response = zhang.post(url(opportunity(), "/approvals"), json={"flow": "tender_review"})
    assert "flow" in error_of(response, 422)["fields"]


def test_manager_then_finance_approve_and_the_record_is_approved(zhang, wang, qian,
                                                                 opportunity):
    record = opportunity(amount=LARGE)
    approval = submitted(zhang, record)
    path = f"/api/v1/approvals/{approval['id']}"
    after_wang = ok(wang.post(f"{path}/approve", json={"comment": "同意"}))
    assert after_wang["step"]["name"] == "finance" and after_wang["status"] == "pending"
    after_qian = ok(qian.post(f"{path}/approve"))
    assert after_qian["status"] == "approved"
    assert ok(zhang.get(url(record)))["approval_status"] == "approved"
    assert [e["action"] for e in after_qian["timeline"]] == ["submit", "approve", "approve",
                                                             "approved"]


def test_a_submitted_record_says_it_is_in_approval_and_a_withdrawn_one_withdrawn(
        zhang, opportunity):
    record = opportunity(amount=LARGE)
    approval = submitted(zhang, record)
    assert ok(zhang.get(url(record)))["approval_status"] == "pending"
    ok(zhang.post(f"/api/v1/approvals/{approval['id']}/withdraw"))
    assert ok(zhang.get(url(record)))["approval_status"] == "withdrawn"


@pytest.mark.parametrize("value", ["pending", "withdrawn"])
def test_a_rep_cannot_set_the_approval_status_the_flow_sets_on_submit(zhang, opportunity,
                                                                      value):
    record = opportunity(amount=LARGE)
    response = zhang.patch(url(record), json={"approval_status": value,
                                              "version": record["version"]})
    assert "approval_status" in error_of(response, 422)["fields"]
    assert ok(zhang.get(url(record)))["approval_status"] is None


def test_a_record_is_locked_while_its_approval_is_pending(zhang, opportunity):
    record = opportunity(amount=LARGE)
    submitted(zhang, record)
    response = zhang.patch(url(record), json={"name": "改名", "version": record["version"]})
    assert error_of(response, 409)["code"] == "locked"


def test_approving_twice_is_a_conflict(zhang, wang, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE))
    path = f"/api/v1/approvals/{approval['id']}/approve"
    ok(wang.post(path))
    assert error_of(wang.post(path), 409)["code"] == "approval_conflict"


def test_a_record_cannot_be_submitted_twice(zhang, opportunity):
    record = opportunity(amount=LARGE)
    submitted(zhang, record)
    response = zhang.post(url(record, "/approvals"), json={"flow": "large_opportunity"})
    assert error_of(response, 409)["code"] == "approval_conflict"


def test_a_rejected_record_is_resubmitted_from_the_rejecting_step(zhang, wang, qian,
                                                                  opportunity):
    record = opportunity(amount=LARGE)
    approval = submitted(zhang, record)
    path = f"/api/v1/approvals/{approval['id']}"
    ok(wang.post(f"{path}/approve"))
    rejected = ok(qian.post(f"{path}/reject", json={"comment": "预算不足"}))
    assert rejected["status"] == "rejected"
    assert ok(zhang.get(url(record)))["approval_status"] == "rejected"
    again = submitted(zhang, record)
    assert again["id"] == approval["id"] and again["round"] == 2
    assert again["step"]["name"] == "finance"  # the flow resubmits from the rejecting step


def test_the_submitter_withdraws_and_the_record_is_unlocked(zhang, wang, opportunity):
    record = opportunity(amount=LARGE)
    approval = submitted(zhang, record)
    withdrawn = ok(zhang.post(f"/api/v1/approvals/{approval['id']}/withdraw"))
    assert withdrawn["status"] == "withdrawn"
    assert ok(wang.get("/api/v1/approvals", query_string={"box": "pending"}))["items"] == []
    # Submitting and withdrawing set the approval status: the record has a newer version.
    version = ok(zhang.get(url(record)))["version"]
    ok(zhang.patch(url(record), json={"name": "改名", "version": version}))


def test_only_the_submitter_may_withdraw(zhang, wang, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE))
    response = wang.post(f"/api/v1/approvals/{approval['id']}/withdraw")
    assert error_of(response, 403)["code"] == "forbidden"


def test_an_approver_hands_the_step_over(zhang, wang, client_of, opportunity, people):
    approval = submitted(zhang, opportunity(amount=LARGE))
    path = f"/api/v1/approvals/{approval['id']}"
    handed = ok(wang.post(f"{path}/hand-over", json={"to_user": people["li"].user_id,
                                                     "comment": "出差中"}))
    assert [(t["user"]["name"], t["status"]) for t in handed["tasks"]] == [
        ("王经理", "handed_over"), ("李娜", "active")]
    assert handed["timeline"][-1]["action"] == "hand_over"
    after = ok(client_of("li").post(f"{path}/approve"))
    assert after["step"]["name"] == "finance"


def test_an_approver_adds_another_before_themselves(zhang, wang, client_of, opportunity,
                                                    people):
    approval = submitted(zhang, opportunity(amount=LARGE))
    path = f"/api/v1/approvals/{approval['id']}"
    added = ok(wang.post(f"{path}/add-approver", json={"user_id": people["zhao"].user_id,
                                                       "position": "before"}))
    assert {t["user"]["name"]: t["status"] for t in added["tasks"]} == {
        "王经理": "waiting", "赵强": "active"}
    assert error_of(wang.post(f"{path}/approve"), 409)["code"] == "approval_conflict"
    # the added approver answers first; the manager then decides the step
    assert ok(client_of("zhao").post(f"{path}/approve"))["step"]["name"] == "manager"
    assert ok(wang.post(f"{path}/approve"))["step"]["name"] == "finance"


def test_handing_over_to_nobody_is_422(zhang, wang, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE))
    response = wang.post(f"/api/v1/approvals/{approval['id']}/hand-over", json={})
    assert "to_user" in error_of(response, 422)["fields"]


def test_a_user_outside_the_flow_gets_404_on_the_approval(zhang, client_of, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE))
    path = f"/api/v1/approvals/{approval['id']}"
    assert error_of(client_of("li").get(path), 404)["code"] == "not_found"
    assert client_of("li").post(f"{path}/approve").status_code == 404
    assert client_of("li").get("/api/v1/approvals/999999").status_code == 404


def test_whoever_may_read_the_record_sees_its_approval(zhang, qian, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE))
    # qian (finance) reads every record, though her step has not started yet
    assert ok(qian.get(f"/api/v1/approvals/{approval['id']}"))["id"] == approval["id"]


def test_the_record_lists_its_approvals_with_timelines(zhang, wang, opportunity):
    record = opportunity(amount=LARGE)
    approval = submitted(zhang, record)
    ok(wang.post(f"/api/v1/approvals/{approval['id']}/reject", json={"comment": "再议"}))
    body = ok(zhang.get(url(record, "/approvals")))
    assert [a["id"] for a in body["items"]] == [approval["id"]]
    assert [e["action"] for e in body["items"][0]["timeline"]] == ["submit", "reject",
                                                                   "rejected"]
    assert body["items"][0]["timeline"][1]["actor"]["name"] == "王经理"
    assert [f["name"] for f in body["submittable"]] == ["large_opportunity"]


def test_the_inbox_boxes(zhang, wang, opportunity):
    first = submitted(zhang, opportunity(amount=LARGE, name="第一"))
    second = submitted(zhang, opportunity(amount=LARGE, name="第二"))
    ok(wang.post(f"/api/v1/approvals/{first['id']}/approve"))
    pending = ok(wang.get("/api/v1/approvals", query_string={"box": "pending"}))["items"]
    processed = ok(wang.get("/api/v1/approvals", query_string={"box": "processed"}))["items"]
    mine = ok(zhang.get("/api/v1/approvals", query_string={"box": "submitted"}))["items"]
    assert [(a["id"], a["record_title"]) for a in pending] == [(second["id"], "第二")]
    assert pending[0]["task_id"]
    assert [(a["id"], a["task_status"]) for a in processed] == [(first["id"], "approved")]
    assert [a["id"] for a in mine] == [second["id"], first["id"]]


def test_the_inbox_reads_a_fixed_number_of_statements(zhang, wang, opportunity,
                                                      count_queries):
    def statements() -> int:
        with count_queries() as counter:
            ok(wang.get("/api/v1/approvals"))
        return counter.count

    submitted(zhang, opportunity(amount=LARGE, name="一"))
    one = statements()
    for name in ("二", "三", "四"):
        submitted(zhang, opportunity(amount=LARGE, name=name))
    assert statements() == one


def test_an_unknown_box_is_422(wang):
    response = wang.get("/api/v1/approvals", query_string={"box": "everything"})
    assert "box" in error_of(response, 422)["fields"]


# -- todos and notifications ----------------------------------------------------------------
def test_the_todo_centre_lists_approvals_work_and_counts(zhang, wang, opportunity):
    submitted(zhang, opportunity(amount=LARGE, name="大单"))
    centre = ok(wang.get("/api/v1/todos"))
    assert [a["record_title"] for a in centre["approvals"]] == ["大单"]
    assert centre["counts"]["approvals"] == 1
    mine = ok(zhang.get("/api/v1/todos"))
    work = [t for t in mine["todos"] if t["kind"] == "stage_work"]
    assert [(t["item"], t["record_title"]) for t in work] == [("confirm_contact", "大单")]
    assert work[0]["label"] == {"en": "Confirm the decision maker", "zh": "确认关键决策人"}
    assert work[0]["due_at"] and not work[0]["overdue"]


def test_a_todo_is_marked_handled(zhang, opportunity):
    opportunity()
    todo = ok(zhang.get("/api/v1/todos"))["todos"][0]
    body = ok(zhang.post(f"/api/v1/todos/{todo['id']}/handled"))
    assert body["handled"] and body["counts"]["todos"] == 0
    assert ok(zhang.get("/api/v1/todos"))["todos"] == []
    handled = ok(zhang.get("/api/v1/todos", query_string={"handled": "1"}))["todos"]
    assert [t["id"] for t in handled] == [todo["id"]]


def test_someone_elses_todo_is_404(zhang, wang, opportunity):
    opportunity()
    todo = ok(zhang.get("/api/v1/todos"))["todos"][0]
    assert wang.post(f"/api/v1/todos/{todo['id']}/handled").status_code == 404


def test_notifications_are_listed_and_marked_read(zhang, wang, opportunity):
    approval = submitted(zhang, opportunity(amount=LARGE, name="大单"))
    ok(wang.post(f"/api/v1/approvals/{approval['id']}/reject", json={"comment": "不行"}))
    body = ok(zhang.get("/api/v1/notifications", query_string={"unread": "1"}))
    assert [(n["kind"], n["record_title"], n["actor"]["name"]) for n in body["items"]] == [
        ("approval_rejected", "大单", "王经理")]
    assert body["unread"] == 1
    marked = ok(zhang.post("/api/v1/notifications/read",
                           json={"ids": [body["items"][0]["id"]]}))
    assert marked == {"marked": 1, "unread": 0}
    assert ok(zhang.get("/api/v1/notifications", query_string={"unread": "1"}))["items"] == []
    assert ok(zhang.get("/api/v1/notifications"))["items"][0]["read"]


def test_all_notifications_are_marked_read_without_ids(zhang, wang, opportunity):
    for name in ("一", "二"):
        submitted(zhang, opportunity(amount=LARGE, name=name))
    assert ok(wang.get("/api/v1/notifications"))["unread"] == 2
    assert ok(wang.post("/api/v1/notifications/read")) == {"marked": 2, "unread": 0}


# -- authentication and the OpenAPI document ------------------------------------------------
def test_a_session_cookie_write_needs_the_csrf_header(app, people, opportunity):
    from conftest import signed_in

    browser = signed_in(app, "zhang", "demo-password")
    record = opportunity()
    path = url(record, "/stage/work")
    assert browser.client.get(url(record, "/stage")).status_code == 200
    assert browser.client.post(path, json={"item": "confirm_contact"}).status_code == 401
    response = browser.client.post(path, json={"item": "confirm_contact"},
                                   headers={"X-CSRFToken": browser.token})
    assert response.status_code == 200, response.get_json()


def test_the_openapi_document_lists_the_flow_paths_and_validates(anonymous):
    document = ok(anonymous.get("/api/v1/openapi.json"))
    validate(document)
    paths = document["paths"]
    assert {"/objects/opportunity/records/{id}/stage",
            "/objects/opportunity/records/{id}/stage/work",
            "/objects/opportunity/records/{id}/stage/events",
            "/objects/opportunity/records/{id}/approvals",
            "/approvals", "/approvals/{id}", "/approvals/{id}/approve",
            "/approvals/{id}/reject", "/approvals/{id}/withdraw",
            "/approvals/{id}/hand-over", "/approvals/{id}/add-approver",
            "/todos", "/todos/{id}/handled", "/notifications",
            "/notifications/read"} <= set(paths)
    assert "/objects/customer/records/{id}/stage" not in paths
    move = paths["/objects/opportunity/records/{id}/stage"]["post"]["responses"]
    assert {"200", "202", "409", "422"} <= set(move)
    assert "StageState" in document["components"]["schemas"]
