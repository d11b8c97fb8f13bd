"""Business settings (业务参数): declared by a template, read by expressions with
setting("name"), edited by an admin as a metadata version, live without a restart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.schema import metastore
from metacrm.engine.systables import meta_document
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths
from metacrm.ui.runtime import registry

from conftest import SAMPLE_FLOWS, signed_in

SETTINGS = "/admin/settings"
THING = """
object: thing
label: {en: Thing, zh: 物品}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - {name: amount, type: decimal, label: {en: Amount, zh: 金额}}
  - name: large
    type: formula
    returns: boolean
    label: {en: Large, zh: 大额}
    expression: amount >= setting("%s")
"""
DECLARED = """
settings:
  - name: threshold
    type: %s
    label: {en: Threshold, zh: 阈值}
    default: %s
    min: 0
    max: 100
"""


def problems_of(folder: Path, setting_type: str = "integer", default: str = "10",
                used: str = "threshold") -> list[str]:
    (folder / "thing.yaml").write_text(THING % used, encoding="utf-8")
    (folder / "settings.yaml").write_text(DECLARED % (setting_type, default), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_paths([folder])
    return [str(p) for p in caught.value.problems]


def test_a_setting_of_an_unknown_type_is_refused_with_file_and_path(tmp_path):
    found = problems_of(tmp_path, setting_type="weekday")
    assert any("settings.yaml: settings[0].type" in p for p in found), found


def test_a_default_outside_the_range_is_refused(tmp_path):
    found = problems_of(tmp_path, default="500")
    assert any("settings[0].default" in p and "at most 100" in p for p in found), found


def test_an_expression_naming_an_unknown_setting_is_refused(tmp_path):
    found = problems_of(tmp_path, used="treshold")
    assert any("thing.yaml" in p and "fields[2].expression" in p
               and "unknown setting 'treshold'" in p for p in found), found


def test_a_valid_setting_loads(tmp_path):
    (tmp_path / "thing.yaml").write_text(THING % "threshold", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(DECLARED % ("integer", "10"), encoding="utf-8")
    assert sorted(d.kind for d in load_paths([tmp_path]).documents) == ["object", "settings"]


def test_the_registry_holds_each_setting_with_its_default(registry):
    setting = registry.settings["contract_expiry_days"]
    assert setting.value == setting.default == 7 and registry.setting("large_deal_amount") == 50000


def test_an_expression_reads_the_settings_value(flows_engine):
    with Session(flows_engine) as session:
        condition = metastore.load_registry(session).flow_conditions["large_opportunity"]
    assert condition.evaluate({"amount": Decimal(50000)}) is True
    assert condition.evaluate({"amount": Decimal(49999)}) is False


def live(app):
    with app.test_request_context():
        return registry()


def test_an_admin_changes_a_setting_live_as_a_new_version(app, web, engine):
    instance.install(engine, [SAMPLE_FLOWS])
    before = live(app)
    web.text(SETTINGS)
    response = web.post(SETTINGS, {"contract_expiry_days": "10",
                                   "large_deal_amount": "80000"})
    assert response.status_code == 302
    after = live(app)
    assert after.version == before.version + 1
    assert after.setting("contract_expiry_days") == 10
    assert after.flow_conditions["large_opportunity"].evaluate(
        {"amount": Decimal(60000)}) is False
    with engine.connect() as conn:  # the admin's value is an overlay; the default stays
        overlay = conn.execute(select(meta_document.c.content).where(
            meta_document.c.kind == "setting", meta_document.c.doc_key == "contract_expiry_days",
            meta_document.c.layer == "overlay")).scalar_one()
    assert overlay == {"value": 10}


def test_a_value_outside_the_range_is_refused_naming_the_setting(app, web, english):
    web.text(SETTINGS)
    response = web.post(SETTINGS, {"contract_expiry_days": "400",
                                   "large_deal_amount": "50000"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "at most 365" in html and 'value="400"' in html
    assert live(app).setting("contract_expiry_days") == 7


def test_a_refusal_reads_in_chinese(app, web):
    web.text(SETTINGS)
    response = web.post(SETTINGS, {"contract_expiry_days": "七天",
                                   "large_deal_amount": "50000"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "需要整数" in html


def test_back_to_default(app, web):
    web.text(SETTINGS)
    web.post(SETTINGS, {"contract_expiry_days": "10", "large_deal_amount": "50000"})
    response = web.post(SETTINGS, {"contract_expiry_days": "10", "large_deal_amount": "50000",
                                   "reset": "contract_expiry_days"})
    assert response.status_code == 302 and live(app).setting("contract_expiry_days") == 7


def test_the_page_lists_the_settings_with_labels_and_help(web):
    html = web.text(SETTINGS)
    assert 'data-setting="contract_expiry_days"' in html and "合同到期提醒" in html
    assert 'setting("large_deal_amount")' in html


def test_only_admins_reach_the_settings(app, people):
    rep = signed_in(app, "zhang", "demo-password")
    assert rep.get(SETTINGS).status_code == 403
    assert rep.post(SETTINGS, {"contract_expiry_days": "1"}).status_code in (400, 403)
    assert live(app).setting("contract_expiry_days") == 7


API = "/api/v1/admin/settings"


def test_the_api_lists_the_settings_with_their_values(api):
    items = {s["name"]: s for s in api.get(API).get_json()["items"]}
    assert items["contract_expiry_days"]["value"] == 7
    assert items["large_deal_amount"]["value"] == "50000" and items["large_deal_amount"][
        "type"] == "decimal"


def test_the_api_changes_a_setting_as_a_version(app, api):
    response = api.patch(API, json={"contract_expiry_days": 14})
    assert response.status_code == 200 and response.get_json()["version"] is not None
    assert live(app).setting("contract_expiry_days") == 14
    assert api.patch(API, json={"contract_expiry_days": None}).status_code == 200
    assert live(app).setting("contract_expiry_days") == 7


def test_the_api_names_the_setting_it_refuses(app, api):
    response = api.patch(API, json={"contract_expiry_days": "soon"})
    assert response.status_code == 422
    assert "contract_expiry_days" in response.get_json()["error"]["fields"]
    unknown = api.patch(API, json={"no_such_setting": 1})
    assert unknown.status_code == 422 and "no_such_setting" in unknown.get_json()["error"][
        "fields"]
