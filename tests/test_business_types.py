"""Business types (业务类型) at work: their own form sections and required fields, offered
by department; related lists as the layout names them; the checks on both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import demo, systables
from metacrm.engine.access import org, users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.writing import records
from metacrm.metadata.model import build_object
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths

from conftest import signed_in

RECORDS = "/api/v1/objects/customer/records"


def field_order(html: str) -> list[str]:
    return re.findall(r'<label class="form-label" for="f-(\w+)"', html)


# -- form sections --------------------------------------------------------------------
def test_a_business_type_with_its_own_sections_shows_them_in_its_order(web):
    html = web.text("/o/customer/new?business_type=key_account")
    assert "客户概况" in html and "企业信息" not in html
    order = field_order(html)
    assert order.index("employees") < order.index("phone") < order.index("source")


def test_a_business_type_without_sections_uses_the_object_layout(web):
    html = web.text("/o/customer/new?business_type=standard")
    assert "基本信息" in html and "企业信息" in html and "客户概况" not in html
    order = field_order(html)
    assert order.index("source") < order.index("phone") < order.index("employees")


def test_the_types_required_fields_are_marked_on_its_form_only(web):
    marked = re.compile(r'for="f-phone">电话 <span class="text-danger"')
    assert marked.search(web.text("/o/customer/new?business_type=key_account"))
    assert not marked.search(web.text("/o/customer/new?business_type=standard"))


# -- required per type ------------------------------------------------------------------
def test_the_types_required_fields_are_refused_blank_on_create(session, registry, admin):
    with pytest.raises(ValidationFailed) as caught:
        records.create(session, registry, "customer",
                       {"name": "Big Co", "business_type": "key_account"}, actor=admin)
    assert caught.value.fields == {"industry": "is required", "phone": "is required"}


def test_another_type_does_not_require_them(session, registry, admin):
    row = records.create(session, registry, "customer",
                         {"name": "Small Co", "business_type": "standard"}, actor=admin)
    assert row["business_type"] == "standard" and row.get("phone") is None


def test_clearing_a_types_required_field_is_refused_on_update(make_record, session, registry,
                                                              admin):
    row = make_record("customer", name="Big Co", business_type="key_account",
                      industry="it", phone="010-88886666")
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "customer", row["id"], {"phone": None},
                              actor=admin)
    assert caught.value.fields == {"phone": "is required"}


def test_changing_to_a_type_needs_its_required_fields(make_record, session, registry, admin):
    row = make_record("customer", name="Grown Co")
    with pytest.raises(ValidationFailed) as caught:
        records.update_record(session, registry, "customer", row["id"],
                              {"business_type": "key_account"}, actor=admin)
    assert caught.value.fields == {"industry": "is required", "phone": "is required"}


def test_the_api_refuses_a_types_blank_required_field(api):
    response = api.post(RECORDS, json={"name": "Api Co", "business_type": "key_account",
                                       "industry": "it"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"phone": "is required"}


def test_the_api_refuses_clearing_a_types_required_field(api):
    created = api.post(RECORDS, json={"name": "Api Co", "business_type": "key_account",
                                      "industry": "it", "phone": "010-1"}).get_json()
    response = api.patch(f"{RECORDS}/{created['id']}", json={"phone": None, "version": 1})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"phone": "is required"}


def test_the_form_refuses_a_types_blank_required_field_by_the_field(web):
    response = web.post("/o/customer/new?business_type=key_account",
                        {"name": "Form Co", "industry": "it"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    phone = html.split('for="f-phone"')[1].split('class="form-label"')[0]
    assert 'field-error">必填</div>' in phone
    assert 'value="Form Co"' in html


def test_the_edit_form_refuses_clearing_a_types_required_field(web, make_record):
    row = make_record("customer", name="Edit Co", business_type="key_account", industry="it",
                      phone="010-1")
    response = web.post(f"/o/customer/{row['id']}/edit",
                        {"name": "Edit Co", "industry": "it", "phone": "", "version": "1"})
    assert response.status_code == 422


# -- offered by department --------------------------------------------------------------
@pytest.fixture
def company(engine):
    """The demo organisation, plus a clerk of the finance department who may create."""
    with Session(engine) as s, s.begin():
        demo.populate_org(s)
        finance = next(d.id for d in org.departments(s) if d.name == "财务部")
        users.create_user(s, "clerk", demo.DEMO_PASSWORD, department_id=finance,
                          roles=["sales_rep"])


def test_a_sales_user_chooses_among_the_types_of_their_department(app, company, session,
                                                                  registry):
    zhang = signed_in(app, "zhang", demo.DEMO_PASSWORD)  # 华东销售组, under 销售部
    html = zhang.text("/o/customer/new")
    assert 'data-type="standard"' in html and 'data-type="key_account"' in html
    response = zhang.post("/o/customer/new?business_type=key_account",
                          {"name": "East Co", "industry": "it", "phone": "021-1"})
    assert response.status_code == 302
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    row = records.get(session, registry, "customer", record_id, actor=SYSTEM)
    assert row["business_type"] == "key_account"


def test_a_user_of_another_department_is_not_offered_the_type(app, company):
    clerk = signed_in(app, "clerk", demo.DEMO_PASSWORD)
    html = clerk.text("/o/customer/new")
    assert "choose a business type" not in html and "选择业务类型" not in html
    assert 'name="name"' in html  # straight to the standard form


def test_a_type_of_another_department_is_refused_on_create(app, company, session, registry):
    clerk = signed_in(app, "clerk", demo.DEMO_PASSWORD)
    response = clerk.post("/o/customer/new?business_type=key_account",
                          {"name": "Sneaky Co", "industry": "it", "phone": "1"})
    assert response.status_code == 403
    assert "大客户" in response.get_data(as_text=True)
    assert session.execute(registry.table("customer").select()).first() is None


def test_the_records_service_refuses_a_type_of_another_department(company, session,
                                                                  registry):
    clerk_id = session.execute(sa.select(systables.sys_user.c.id).where(
        systables.sys_user.c.username == "clerk")).scalar_one()
    clerk = users.load_actor(session, clerk_id)
    with pytest.raises(ValidationFailed) as refused:
        records.create(session, registry, "customer", {
            "name": "API Co", "business_type": "key_account", "industry": "it",
            "phone": "1"}, actor=clerk)
    assert "business_type" in refused.value.fields
    session.rollback()


# -- related lists ----------------------------------------------------------------------
def test_related_lists_follow_the_layout_order_and_columns(web, make_record):
    customer = make_record("customer", name="Rel Co")
    make_record("contact", name="王伟", customer=customer["id"], title="经理")
    html = web.text(f"/o/customer/{customer['id']}")
    order = re.findall(r'class="mb-4 related-list" data-object="(\w+)"', html)
    assert order == ["opportunity", "contact", "contract", "quote"]
    contacts = html.split('data-object="contact"')[1].split("</section>")[0]
    assert "职务" in contacts and "经理" in contacts and "手机" in contacts
    assert "负责人" not in contacts  # the list columns' owner is not among the chosen ones


def test_without_related_lists_in_the_layout_every_referrer_is_listed(web, make_record):
    opportunity = make_record("opportunity", name="Deal",
                              customer=make_record("customer", name="C")["id"])
    html = web.text(f"/o/opportunity/{opportunity['id']}")
    assert 'data-object="quote"' in html and 'data-object="contract"' in html


# -- checks -------------------------------------------------------------------------------
THING = """
object: thing
label: {en: Thing, zh: 物品}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - {name: note, type: text, label: {en: Note, zh: 备注}}
"""
PART = """
object: part
label: {en: Part, zh: 零件}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - {name: thing, type: lookup, target: thing, label: {en: Thing, zh: 物品}}
  - {name: label, type: text, label: {en: Label, zh: 标签}}
"""


def problems_of(folder: Path, thing_extra: str) -> list[str]:
    (folder / "thing.yaml").write_text(THING + thing_extra, encoding="utf-8")
    (folder / "part.yaml").write_text(PART, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_paths([folder])
    return [str(p) for p in caught.value.problems]


def test_a_business_types_required_and_form_fields_must_exist(tmp_path):
    found = problems_of(tmp_path, """
business_types:
  - name: big
    label: {en: Big, zh: 大}
    required: [size]
    form:
      - {label: {en: Main, zh: 主要}, fields: [name, colour]}
""")
    path = tmp_path / "thing.yaml"
    assert found == [f"{path}: business_types[0].required[0]: 'size' is not a field of thing",
                     f"{path}: business_types[0].form[0].fields[1]: "
                     "'colour' is not a field of thing"]


def test_a_types_required_field_must_be_among_its_fields(tmp_path):
    found = problems_of(tmp_path, """
business_types:
  - {name: big, label: {en: Big, zh: 大}, fields: [name], required: [note]}
""")
    assert found == [f"{tmp_path / 'thing.yaml'}: business_types[0].required[0]: "
                     "'note' is required but not among this type's fields"]


def test_a_related_list_needs_a_lookup_to_this_object_and_known_columns(tmp_path):
    found = problems_of(tmp_path, """
layouts:
  related:
    - {object: part, field: label}
    - {object: part, field: thing, columns: [name, weight]}
    - {object: gadget, field: thing}
""")
    path = tmp_path / "thing.yaml"
    assert found == [
        f"{path}: layouts.related[0].field: 'label' is not a lookup from part to thing",
        f"{path}: layouts.related[1].columns[1]: 'weight' is not a field of part",
        f"{path}: layouts.related[2].object: 'gadget' is not a known object"]


def test_a_good_related_list_and_type_load(tmp_path):
    (tmp_path / "thing.yaml").write_text(THING + """
business_types:
  - name: big
    label: {en: Big, zh: 大}
    required: [note]
    form: [{label: {en: Main, zh: 主要}, fields: [note, name]}]
layouts:
  related: [{object: part, field: thing, columns: [name, owner]}]
""", encoding="utf-8")
    (tmp_path / "part.yaml").write_text(PART, encoding="utf-8")
    [doc] = [d for d in load_paths([tmp_path]).of_kind("object") if d.name == "thing"]
    thing = build_object(doc.content)
    assert thing.business_type("big").required == ("note",)
    assert [s.fields for s in thing.form_of(thing.business_type("big"))] == [("note", "name")]
    assert [(r.object, r.field, r.columns) for r in thing.related] == [
        ("part", "thing", ("name", "owner"))]
