"""The admin pages for business types and layouts: every change through the
customisations engine, refusals shown by the form with what was typed kept."""

from __future__ import annotations

import re

from metacrm.engine import demo
from metacrm.ui.runtime import registry

from conftest import signed_in

TYPES = "/admin/objects/customer/business-types"
LAYOUT = "/admin/objects/customer/layout"


def current(app):
    with app.test_request_context():
        return registry().object("customer")


def type_form(obj, **extra) -> dict:
    """A new type's form as the page fills it: every placed field ticked, in place."""
    data = {"name": "", "label_zh": "", "label_en": ""}
    for s, section in enumerate(obj.form):
        for i, name in enumerate(section.fields):
            data.update({f"use.{name}": "1", f"section.{name}": str(s),
                         f"order.{name}": str((i + 1) * 10)})
    data.update(extra)
    return data


# -- business types ------------------------------------------------------------------------
def test_the_business_types_page_lists_the_types(web):
    html = web.text(TYPES)
    assert 'data-type="standard"' in html and 'data-type="key_account"' in html
    assert "销售部" in html


def test_creating_a_business_type_with_departments_required_fields_and_options(app, web):
    obj = current(app)
    data = type_form(obj, name="channel", label_zh="渠道客户", label_en="Channel",
                     departments=["财务部"], **{"required.email": "1", "picks.level": "1",
                                               "pick.level": ["A", "C"]})
    del data["use.locked"]
    web.text(f"{TYPES}/new")
    response = web.post(f"{TYPES}/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    bt = current(app).business_type("channel")
    assert bt.label.zh == "渠道客户" and bt.departments == ("财务部",)
    assert bt.required == ("email",) and bt.picklists == {"level": ("A", "C")}
    assert "locked" not in bt.fields and bt.form == ()  # the object's sections, as they were


def test_a_type_can_order_its_fields_into_its_own_form(app, web):
    obj = current(app)
    data = type_form(obj, name="compact", label_zh="简版", label_en="Compact",
                     **{"section.remark": "0", "order.remark": "5"})
    web.text(f"{TYPES}/new")
    assert web.post(f"{TYPES}/new", data).status_code == 302
    bt = current(app).business_type("compact")
    assert bt.form[0].fields[0] == "remark" and "remark" not in bt.form[-1].fields
    html = web.text("/o/customer/new?business_type=compact")
    order = re.findall(r'<label class="form-label" for="f-(\w+)"', html)
    assert order[0] == "remark"


def test_editing_a_type_keeps_its_own_sections(app, web):
    html = web.text(f"{TYPES}/key_account")
    assert "客户概况" in html and 'value="key_account"' in html
    before = current(app).business_type("key_account")
    data = {"label_zh": "重点大客户", "label_en": "Key account", "departments": ["销售部"],
            "picks.level": "1", "pick.level": ["A", "B"]}
    for s, section in enumerate(before.form):
        for i, name in enumerate(section.fields):
            data.update({f"use.{name}": "1", f"section.{name}": str(s),
                         f"order.{name}": str((i + 1) * 10)})
    data.update({"required.industry": "1", "required.phone": "1"})
    assert web.post(f"{TYPES}/key_account", data).status_code == 302
    after = current(app).business_type("key_account")
    assert after.label.zh == "重点大客户" and after.form == before.form
    assert after.required == before.required and after.picklists == before.picklists


def test_a_duplicate_type_name_is_refused_keeping_what_was_typed(app, web):
    data = type_form(current(app), name="standard", label_zh="另一个", label_en="Other")
    web.text(f"{TYPES}/new")
    response = web.post(f"{TYPES}/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'value="另一个"' in html
    assert current(app).business_type("standard").label.zh == "标准客户"


def test_a_type_without_a_label_is_refused_with_the_engines_message(app, web):
    data = type_form(current(app), name="nolabel")
    web.text(f"{TYPES}/new")
    response = web.post(f"{TYPES}/new", data)
    assert response.status_code == 422 and 'class="problem"' in response.get_data(as_text=True)
    assert current(app).business_type("nolabel") is None


def test_removing_a_type(app, web):
    web.text(TYPES)
    assert web.post(f"{TYPES}/key_account/remove").status_code == 302
    assert [b.name for b in current(app).business_types] == ["standard"]


def test_the_admin_pages_are_for_administrators_only(app, web):
    with app.app_context():
        from sqlalchemy.orm import Session

        from metacrm.ui.runtime import runtime
        with Session(runtime().engine) as s, s.begin():
            demo.populate_org(s)
    zhang = signed_in(app, "zhang", demo.DEMO_PASSWORD)
    assert zhang.get(TYPES).status_code == 403 and zhang.get(LAYOUT).status_code == 403


# -- layout -------------------------------------------------------------------------------------
def form_layout(obj) -> dict:
    data = {"sections": str(len(obj.form)), "new_zh": "", "new_en": ""}
    for s, section in enumerate(obj.form):
        data.update({f"s{s}_zh": section.label.zh, f"s{s}_en": section.label.en})
        for i, name in enumerate(section.fields):
            data.update({f"section.{name}": str(s), f"order.{name}": str((i + 1) * 10)})
    return data


def test_the_layout_page_shows_sections_columns_and_related_lists(web):
    html = web.text(LAYOUT)
    assert 'value="基本信息"' in html and 'name="col.code"' in html
    assert 'data-related="opportunity.customer"' in html


def test_adding_renaming_and_removing_sections(app, web):
    obj = current(app)
    data = form_layout(obj)
    data.update({"s0_zh": "概要", "s0_en": "Summary", "s2_remove": "1", "new_zh": "备注信息",
                 "new_en": "Notes", "section.remark": "new", "section.locked": "1",
                 "order.locked": "99"})
    web.text(LAYOUT)
    assert web.post(f"{LAYOUT}/form", data).status_code == 302
    form = current(app).form
    assert [s.label.zh for s in form] == ["概要", "联系方式", "备注信息"]
    assert form[1].fields[-1] == "locked" and form[2].fields == ("remark",)
    assert "employees" not in {n for s in form for n in s.fields}  # its section was removed
    assert "概要" in web.text("/o/customer/new?business_type=standard")


def test_list_columns_and_sort(app, web):
    web.text(LAYOUT)
    response = web.post(f"{LAYOUT}/list", {"col.name": "1", "colorder.name": "20",
                                           "col.phone": "1", "colorder.phone": "10",
                                           "sort_field": "name", "sort_dir": "asc"})
    assert response.status_code == 302
    obj = current(app)
    assert obj.list_columns == ("phone", "name") and obj.default_sort == "name"


def test_related_lists_chosen_ordered_and_with_columns(app, web, make_record):
    web.text(LAYOUT)
    response = web.post(f"{LAYOUT}/related", {
        "rel.contact.customer": "1", "relorder.contact.customer": "10",
        "relcols.contact.customer": ["name", "mobile"],
        "rel.opportunity.customer": "1", "relorder.opportunity.customer": "20"})
    assert response.status_code == 302
    related = current(app).related
    assert [(r.object, r.columns) for r in related] == [("contact", ("name", "mobile")),
                                                        ("opportunity", ())]
    customer = make_record("customer", name="Rel Co")
    html = web.text(f"/o/customer/{customer['id']}")
    assert re.findall(r'related-list" data-object="(\w+)"', html) == ["contact", "opportunity"]


def test_a_bad_layout_is_refused_with_a_clear_message_and_nothing_changes(app, web, english):
    before = current(app)
    web.text(LAYOUT)
    response = web.post(f"{LAYOUT}/list", {"col.name": "1", "sort_field": "nonsense"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "layouts.list.sort" in html and "&#39;nonsense&#39; is not a field of customer" in html
    assert re.search(r'name="col\.name" value="1"[^>]*checked', html)  # as typed
    assert not re.search(r'name="col\.code" value="1"[^>]*checked', html)
    after = current(app)
    assert (after.list_columns, after.default_sort) == (before.list_columns, before.default_sort)


def test_an_empty_new_section_is_refused(app, web):
    before = current(app).form
    data = form_layout(current(app))
    data.update({"new_zh": "空的", "new_en": "Empty"})
    web.text(LAYOUT)
    response = web.post(f"{LAYOUT}/form", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "layouts.form[3].fields" in html
    assert 'value="空的"' in html and current(app).form == before
