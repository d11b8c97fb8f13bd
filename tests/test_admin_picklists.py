"""The shared picklists admin: create, add a value, relabel, reorder, deactivate and
reactivate; a record holding a deactivated value keeps it."""

from __future__ import annotations

import pytest

from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.writing import records
from metacrm.ui.runtime import registry

PICKLISTS = "/admin/picklists"
SOURCE = f"{PICKLISTS}/source"


def picklist(app, name: str = "source"):
    with app.test_request_context():
        return registry().picklists[name]


def values(app, name: str = "source") -> list[str]:
    return [o.value for o in picklist(app, name).options]


def test_the_list_shows_the_shared_picklists_and_their_fields(web):
    html = web.text(PICKLISTS)
    assert 'data-picklist="industry"' in html and 'data-picklist="source"' in html
    assert "商机来源" in html  # opportunity.source uses it


def test_creating_a_picklist_with_its_first_value(app, web):
    web.text(PICKLISTS)
    response = web.post(PICKLISTS, {"name": "region_tier", "label_zh": "区域等级",
                                    "label_en": "Region tier", "value": "t1",
                                    "option_zh": "一线", "option_en": "Tier 1"})
    assert response.status_code == 302
    created = picklist(app, "region_tier")
    assert created.label.zh == "区域等级" and [o.label.zh for o in created.options] == ["一线"]


def test_a_bad_picklist_is_refused_keeping_what_was_typed(app, web, english):
    web.text(PICKLISTS)
    response = web.post(PICKLISTS, {"name": "source", "label_zh": "重复", "label_en": "Dup",
                                    "value": "x", "option_zh": "X", "option_en": "X"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "already exists" in html and 'value="重复"' in html
    assert picklist(app).label.zh == "来源"


def test_adding_a_value(app, web):
    web.text(SOURCE)
    response = web.post(f"{SOURCE}/options", {"value": "partner", "label_zh": "合作伙伴",
                                              "label_en": "Partner"})
    assert response.status_code == 302
    assert values(app)[-1] == "partner"
    assert picklist(app).options[-1].label.zh == "合作伙伴"


def test_adding_a_value_twice_is_refused_by_the_form(app, web, english):
    web.text(SOURCE)
    response = web.post(f"{SOURCE}/options", {"value": "website", "label_zh": "网站",
                                              "label_en": "Site"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "an option &#39;website&#39; already exists" in html
    assert 'value="网站"' in html and values(app).count("website") == 1


def test_relabelling_keeps_the_value(app, web, make_record):
    customer = make_record("customer", name="C", source="website")
    web.text(SOURCE)
    response = web.post(f"{SOURCE}/options/website/label", {"label_zh": "公司官网",
                                                            "label_en": "Company site"})
    assert response.status_code == 302
    option = next(o for o in picklist(app).options if o.value == "website")
    assert option.label.zh == "公司官网"
    assert "公司官网" in web.text(f"/o/customer/{customer['id']}")


def test_moving_a_value_up_and_down(app, web):
    before = values(app)
    web.text(SOURCE)
    assert web.post(f"{SOURCE}/options/website/move", {"direction": "up"}).status_code == 302
    assert values(app)[:2] == [before[1], before[0]]
    web.post(f"{SOURCE}/options/website/move", {"direction": "down"})
    assert values(app) == before


def test_a_deactivated_value_stays_on_its_record_but_is_not_offered(app, web, make_record,
                                                                  session):
    customer = make_record("customer", name="Kept Co", source="exhibition")
    web.text(SOURCE)
    assert web.post(f"{SOURCE}/options/exhibition/active", {"active": "0"}).status_code == 302
    assert not next(o for o in picklist(app).options if o.value == "exhibition").active
    with app.test_request_context():
        reg = registry()
    assert records.get(session, reg, "customer", customer["id"],
                       actor=SYSTEM)["source"] == "exhibition"
    assert "展会" in web.text(f"/o/customer/{customer['id']}")
    assert 'value="exhibition"' not in web.text("/o/customer/new?business_type=standard")
    with pytest.raises(ValidationFailed):
        records.create(session, reg, "customer", {"name": "New Co", "source": "exhibition"},
                       actor=SYSTEM)


def test_reactivating_a_value(app, web):
    web.text(SOURCE)
    web.post(f"{SOURCE}/options/exhibition/active", {"active": "0"})
    assert web.post(f"{SOURCE}/options/exhibition/active", {"active": "1"}).status_code == 302
    assert next(o for o in picklist(app).options if o.value == "exhibition").active


def test_an_unknown_picklist_is_404(web):
    assert web.get(f"{PICKLISTS}/nothing").status_code == 404
