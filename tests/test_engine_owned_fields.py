"""Fields the engine owns: no user path writes them, over HTTP on SQLite and PostgreSQL.

The stage and win-rate fields change by a stage move, what an approval's outcome sets
by that outcome, formulas, roll-ups and auto-numbers by the engine's computation. A form,
the API or a hand-made request naming one with a value of its own is refused, naming the
field; the stored value stays the engine's. A hidden field is refused whatever its value
(no oracle), and an edit form without the version it was read at overwrites nothing.
"""

from __future__ import annotations

import html as html_text
import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metacrm.engine.access import roles
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.flows import approvals, stages
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.metadata.model import FieldDef, ObjectDef

from conftest import ApiClient, Browser, signed_in

PASSWORD = "demo-password"
API = "/api/v1/objects"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


class Office:
    """The demo company with the sample flows; zhang (a sales rep) writes over HTTP."""

    def __init__(self, app, engine, registry: Registry, people):
        self.app, self.engine, self.registry, self.people = app, engine, registry, people
        self.numbers = itertools.count(1)
        self._clients: dict[str, ApiClient] = {}

    # -- values -------------------------------------------------------------------------
    def required(self, obj: ObjectDef) -> dict[str, Any]:
        """Values of the object's required fields (and its first business type), as a
        form or a JSON body sends them; looked-up records are made for them."""
        out: dict[str, Any] = {}
        for f in obj.active_fields:
            if f.required and not f.kind.generated:
                out[f.name] = self._value(f)
        if obj.business_types:
            out["business_type"] = obj.business_types[0].name
        return out

    def _value(self, f: FieldDef) -> Any:
        if f.target:
            return self.make(f.target)["id"]
        if f.kind.storage in ("integer", "decimal"):
            return "100"
        if f.options:
            return f.option_values[0]
        assert f.type in ("text", "textarea"), f"no test value for {f.type} fields"
        return f"{f.name} {next(self.numbers)}"

    def make(self, object_name: str, **values) -> dict[str, Any]:
        """A record of zhang's, made through the records service as he would."""
        obj = self.registry.object(object_name)
        with Session(self.engine) as s, s.begin():
            return records.create(s, self.registry, obj, {**self.required(obj), **values},
                                  actor=self.people["zhang"])

    def stored(self, object_name: str, record_id: int) -> dict[str, Any]:
        with Session(self.engine) as s:
            return records.get(s, self.registry, object_name, record_id, actor=SYSTEM)

    def count(self, object_name: str) -> int:
        table = self.registry.table(object_name)
        with Session(self.engine) as s:
            return s.execute(select(func.count()).select_from(table)).scalar_one()

    # -- clients ------------------------------------------------------------------------
    def api(self, username: str = "zhang") -> ApiClient:
        if username not in self._clients:
            http = self.app.test_client()
            response = http.post("/api/v1/auth/token",
                                 json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.get_json()
            self._clients[username] = ApiClient(http, response.get_json()["token"])
        return self._clients[username]

    def browser(self, username: str = "zhang") -> Browser:
        browser = signed_in(self.app, username, PASSWORD)
        browser.post("/language", {"language": "en", "next": "/"})
        return browser


@pytest.fixture
def office(app, engine, registry, people) -> Office:
    return Office(app, engine, registry, people)


def foreign_value(office: Office, obj: ObjectDef, name: str, owner: str) -> Any:
    """A value the engine would not give the field: won, 99 %, approved, a number."""
    f = obj.all_fields[name]
    if owner == "stages" and f.options:
        process = office.registry.processes_of(obj.name)[0]
        return process.terminal_of("won").name
    if owner == "stages":
        return "99"
    if owner == "approvals":
        return next(o.value for o in f.options if o.value != f.default)
    return "999"


def same(a: Any, b: Any) -> bool:
    """Whether a stored value and a sent one are the same value (numbers as numbers)."""
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except ArithmeticError:
        return str(a) == str(b)


def owned_cases(office: Office):
    """(object, field, owner) for every engine-owned field of every object a user writes
    on its own (line items are written inside their parent's form and body)."""
    for obj in office.registry.active_objects:
        if obj.master_field is None:
            for name, owner in office.registry.owned_fields(obj.name).items():
                yield obj, name, owner


def refusal_in_page(html: str, name: str, obj: ObjectDef) -> bool:
    errors = re.search(r'id="form-errors">(.*?)</div>\s*\n', html, re.S)
    label = obj.all_fields[name].label.en
    return bool(errors) and f"{label}:" in html_text.unescape(errors.group(1))


# -- the property: every object, every user path ------------------------------------------
PATHS = ("api_post", "api_patch", "form_create", "form_edit")


@pytest.mark.parametrize("path", PATHS)
def test_no_user_path_sets_a_field_the_engine_owns(office, path):
    cases = list(owned_cases(office))
    assert {owner for _, _, owner in cases} == {"stages", "approvals", "computed"}
    web = office.browser() if path.startswith("form") else None
    for obj, name, owner in cases:
        wrong = foreign_value(office, obj, name, owner)
        where = f"{path} {obj.name}.{name}"
        if path in ("api_post", "form_create"):
            before = office.count(obj.name)
            body = {**office.required(obj), name: wrong}
            if path == "api_post":
                response = office.api().post(f"{API}/{obj.name}/records", json=body)
                assert response.status_code == 422, where
                assert response.get_json()["error"]["fields"].get(name), where
            else:
                response = web.post(f"/o/{obj.name}/new", {k: str(v) for k, v in body.items()})
                assert response.status_code == 422, where
                assert refusal_in_page(response.get_data(as_text=True), name, obj), where
            assert office.count(obj.name) == before, where
            continue
        record = office.make(obj.name)
        before = office.stored(obj.name, record["id"])
        if path == "api_patch":
            response = office.api().patch(f"{API}/{obj.name}/records/{record['id']}",
                                          json={"version": record["version"], name: wrong})
            assert response.status_code == 422, where
            assert response.get_json()["error"]["fields"].get(name), where
        else:
            form = {k: str(v) for k, v in {**office.required(obj), name: wrong,
                                           "version": record["version"]}.items()}
            form.pop("business_type", None)
            response = web.post(f"/o/{obj.name}/{record['id']}/edit", form)
            assert response.status_code == 422, where
            assert refusal_in_page(response.get_data(as_text=True), name, obj), where
        after = office.stored(obj.name, record["id"])
        assert after == before and not same(after[name], wrong), where


# -- regressions ----------------------------------------------------------------------------
def opportunity_form(office: Office, **values) -> dict[str, str]:
    return {"name": "智慧园区", "customer": str(office.make("customer")["id"]),
            "business_type": "standard", "amount": "600000", **values}


def test_a_hand_made_form_creating_a_won_opportunity_is_refused(office):
    before = office.count("opportunity")
    response = office.browser().post("/o/opportunity/new", opportunity_form(office,
                                                                             stage="won"))
    assert response.status_code == 422
    assert "a new record starts in qualify" in html_text.unescape(
        response.get_data(as_text=True))
    assert office.count("opportunity") == before


def test_an_api_client_cannot_create_a_won_opportunity(office):
    response = office.api().post(f"{API}/opportunity/records", json={
        "name": "智慧园区", "customer": office.make("customer")["id"], "stage": "won"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {  # zhang reads Chinese
        "stage": "新记录从验证客户开始；之后的阶段只能通过阶段推进变更"}


@pytest.mark.parametrize("typed", ["99", "-50"])
def test_a_typed_win_rate_is_refused_not_overwritten(office, typed):
    web = office.browser()
    response = web.post("/o/opportunity/new", opportunity_form(office, win_rate=typed))
    assert response.status_code == 422
    record = office.make("opportunity")
    response = web.post(f"/o/opportunity/{record['id']}/edit", {
        "name": "改", "customer": str(record["customer"]), "win_rate": typed,
        "version": str(record["version"])})
    assert response.status_code == 422
    # 99 is refused as the stage engine's; -50 already as below the field's minimum.
    refusal = ("changes by moving the record along its stage path" if typed == "99"
               else "must be at least 0")
    assert f"Win rate: {refusal}" in html_text.unescape(response.get_data(as_text=True))
    assert float(office.stored("opportunity", record["id"])["win_rate"]) == 10


def test_a_new_opportunity_starts_in_the_first_stage_at_its_win_rate(office):
    response = office.browser().post("/o/opportunity/new", opportunity_form(office,
                                                                             stage="qualify"))
    assert response.status_code == 302
    stored = office.stored("opportunity", int(response.location.rsplit("/", 1)[1]))
    assert (stored["stage"], float(stored["win_rate"]), stored["approval_status"]) == \
        ("qualify", 10, None)


@pytest.mark.parametrize("how", ["create", "edit"])
def test_a_rep_cannot_approve_his_own_opportunity(office, how):
    web = office.browser()
    if how == "create":
        before = office.count("opportunity")
        response = web.post("/o/opportunity/new",
                            opportunity_form(office, approval_status="approved"))
        assert office.count("opportunity") == before
    else:
        record = office.make("opportunity", amount=600000)
        response = web.post(f"/o/opportunity/{record['id']}/edit", {
            "name": record["name"], "customer": str(record["customer"]),
            "amount": "600000", "approval_status": "approved",
            "version": str(record["version"])})
        assert office.stored("opportunity", record["id"])["approval_status"] is None
    assert response.status_code == 422
    assert "Approval: is set by the approval flow" in html_text.unescape(
        response.get_data(as_text=True))


def test_the_edit_form_posting_back_an_unchanged_engine_value_saves(office):
    record = office.make("opportunity")
    response = office.browser().post(f"/o/opportunity/{record['id']}/edit", {
        "name": "改名", "customer": str(record["customer"]), "stage": "qualify",
        "win_rate": "10", "version": str(record["version"])})
    assert response.status_code == 302
    assert office.stored("opportunity", record["id"])["name"] == "改名"


def test_the_approval_outcome_still_sets_its_fields(office, people):
    record = office.make("opportunity", amount=600000)
    with Session(office.engine) as s, s.begin():
        approval_id = approvals.submit(s, office.registry, "opportunity", record["id"],
                                       "large_opportunity", actor=people["zhang"])
    with Session(office.engine) as s, s.begin():
        approvals.reject(s, office.registry, approval_id, actor=people["wang"], comment="贵")
    assert office.stored("opportunity", record["id"])["approval_status"] == "rejected"


def test_the_edit_and_create_forms_offer_no_input_for_engine_owned_fields(office):
    web = office.browser()
    record = office.make("opportunity")
    for url in ("/o/opportunity/new?business_type=standard",
                f"/o/opportunity/{record['id']}/edit"):
        page = web.text(url)
        for name in ("stage", "win_rate", "approval_status", "code"):
            assert f'name="{name}"' not in page, (url, name)
            assert f'id="f-{name}"' in page, (url, name)  # shown, as text


# -- start stages -----------------------------------------------------------------------------
@pytest.fixture
def choosing(registry) -> Registry:
    """The sample registry with the standard process letting a new record start in needs."""
    import dataclasses

    process = registry.stage_processes["opportunity_standard"]
    chosen = dataclasses.replace(process, start_stages=("qualify", "needs"))
    return dataclasses.replace(registry, stage_processes={**registry.stage_processes,
                                                         process.name: chosen})


def create_as(engine, registry: Registry, actor, **values) -> dict:
    with Session(engine) as s, s.begin():
        customer = records.create(s, registry, "customer", {"name": f"客户 {id(values)}"},
                                  actor=actor)["id"]
        return records.create(s, registry, "opportunity", {
            "name": "商机", "customer": customer, "business_type": "standard", **values},
            actor=actor)


def test_a_process_with_start_stages_lets_a_new_record_start_in_one(engine, choosing, people):
    contact_free = pytest.raises(ValidationFailed)
    with contact_free as caught:  # needs asks for a contact
        create_as(engine, choosing, people["zhang"], stage="needs")
    assert set(caught.value.fields) == {"contact"}
    with Session(engine) as s, s.begin():
        customer = records.create(s, choosing, "customer", {"name": "远航"},
                                  actor=people["zhang"])["id"]
        contact = records.create(s, choosing, "contact", {"name": "陈总", "customer": customer},
                                 actor=people["zhang"])["id"]
    row = create_as(engine, choosing, people["zhang"], stage="needs", contact=contact)
    assert (row["stage"], float(row["win_rate"])) == ("needs", 30)


def test_a_stage_outside_the_start_stages_is_refused_on_creation(engine, choosing, people):
    with pytest.raises(ValidationFailed) as caught:
        create_as(engine, choosing, people["zhang"], stage="proposal", amount=1,
                  close_date="2030-01-01")
    assert caught.value.fields == {"stage": "a new record starts in qualify, needs; the stage "
                                            "then changes by moving the record along its "
                                            "stage path"}


def test_the_stage_engine_may_still_place_a_new_record_in_any_stage(engine, registry, people):
    with Session(engine) as s, s.begin():
        customer = records.create(s, registry, "customer", {"name": "远航"},
                                  actor=people["zhang"])["id"]
        contact = records.create(s, registry, "contact", {"name": "陈总", "customer": customer},
                                 actor=people["zhang"])["id"]
        row = records.create(s, registry, "opportunity", {
            "name": "商机", "customer": customer, "stage": "won", "contact": contact,
            "amount": 1000, "close_date": "2030-01-01"}, actor=people["zhang"],
            by=stages.OWNER)
    assert (row["stage"], float(row["win_rate"])) == ("won", 100)


# -- the hidden-field oracle ---------------------------------------------------------------
@pytest.fixture
def hiding(office, people) -> None:
    """The sales reps' role hides customer.level and opportunity.amount."""
    with Session(office.engine) as s, s.begin():
        rep = roles.role_id(s, "sales_rep")
        roles.set_field_rules(s, rep, office.registry.object("customer"), {"level": "hidden"})
        roles.set_field_rules(s, rep, office.registry.object("opportunity"),
                              {"amount": "hidden"})


@pytest.mark.parametrize("object_name,field,true_value,wrong_value", [
    ("customer", "level", "A", "C"),
    ("opportunity", "amount", "600000", "1"),
])
def test_a_hidden_field_is_refused_whatever_its_value(office, hiding, object_name, field,
                                                      true_value, wrong_value):
    record = office.make(object_name)
    with Session(office.engine) as s, s.begin():
        records.update_record(s, office.registry, object_name, record["id"],
                              {field: true_value}, actor=SYSTEM)
    answers = []
    for value in (true_value, wrong_value, "no such option"):
        current = office.stored(object_name, record["id"])
        response = office.api().patch(f"{API}/{object_name}/records/{record['id']}",
                                      json={"version": current["version"], field: value})
        answers.append((response.status_code, response.get_json()["error"]["fields"]))
    unknown = office.api().patch(f"{API}/{object_name}/records/{record['id']}",
                                 json={"version": current["version"], "no_such_field": 1})
    assert answers == [(422, {field: "不是该对象的字段"})] * 3  # "is not a field of this object"
    assert unknown.get_json()["error"]["fields"] == {"no_such_field": "不是该对象的字段"}
    assert same(office.stored(object_name, record["id"])[field], true_value)


# -- an edit form without its version ---------------------------------------------------------
def test_an_edit_form_without_its_version_overwrites_nothing(office, people):
    record = office.make("customer")
    with Session(office.engine) as s, s.begin():  # a colleague's change, after the form was read
        records.update_record(s, office.registry, "customer", record["id"],
                              {"remark": "李娜的更新"}, actor=people["zhang"])
    response = office.browser().post(f"/o/customer/{record['id']}/edit",
                                     {"name": record["name"], "remark": "旧表单"})
    assert response.status_code == 422
    assert "did not say which version" in response.get_data(as_text=True)
    assert office.stored("customer", record["id"])["remark"] == "李娜的更新"


def test_the_api_still_asks_for_the_version_on_patch(office):
    record = office.make("customer")
    response = office.api().patch(f"{API}/customer/records/{record['id']}",
                                  json={"remark": "x"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"version": "必填"}  # "is required"


def test_the_openapi_document_marks_engine_owned_fields_read_only(office):
    schemas = office.api().get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for name in ("stage", "win_rate", "approval_status", "code"):
        shown = schemas["Opportunity"]["properties"][name]
        assert (shown.get("anyOf") or [shown])[0].get("readOnly") is True, name
        assert name not in schemas["OpportunityInput"]["properties"]
        assert name not in schemas["OpportunityPatch"]["properties"]
