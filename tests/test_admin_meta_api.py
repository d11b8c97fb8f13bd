"""The admin metadata API under /api/v1/admin, over HTTP on SQLite and PostgreSQL.

A refused change is checked three ways: a message naming the path, the newest version
unchanged, and the records unchanged.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine.access import users

from conftest import ApiClient

ADMIN = "/api/v1/admin"
EQUIPMENT = {"object": "equipment", "label": {"en": "Equipment", "zh": "设备"},
             "icon": "box", "features": ["owner", "audit"],
             "title": {"name": "name", "label": {"en": "Name", "zh": "名称"}}}


def label(en: str, zh: str | None = None) -> dict:
    return {"en": en, "zh": zh or en}


def put(api: ApiClient, url: str, **kw):
    return api.request("PUT", url, **kw)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def problems(response, status: int = 422) -> list[dict]:
    body = response.get_json()
    assert response.status_code == status, body
    return body["error"]["problems"]


def newest(api: ApiClient) -> int:
    return ok(api.get(f"{ADMIN}/versions", query_string={"limit": 1}))["items"][0]["version"]


def document(api: ApiClient, name: str = "equipment") -> dict:
    return ok(api.get(f"{ADMIN}/objects/{name}"))


def fields_of(api: ApiClient, name: str = "equipment") -> dict[str, dict]:
    return {f["name"]: f for f in document(api, name)["fields"]}


def add_field(api: ApiClient, raw: dict, **kw):
    return api.post(f"{ADMIN}/objects/equipment/fields", json=raw, **kw)


def record(api: ApiClient, **values) -> dict:
    return ok(api.post("/api/v1/objects/equipment/records", json=values), 201)


def read(api: ApiClient, record_id: int) -> dict:
    return ok(api.get(f"/api/v1/objects/equipment/records/{record_id}"))


@pytest.fixture
def equipment(api: ApiClient) -> ApiClient:
    ok(api.post(f"{ADMIN}/objects", json=EQUIPMENT), 201)
    return api


@pytest.fixture
def with_code(equipment: ApiClient) -> ApiClient:
    ok(add_field(equipment, {"name": "code", "type": "text", "label": label("Code")}), 201)
    return equipment


# -- access -------------------------------------------------------------------------------
def test_only_a_super_administrator_may_use_it(app, engine, api):
    with Session(engine) as s:
        user_id = users.create_user(s, "clerk", "clerk-password")
        token = users.issue_token(s, users.load_actor(s, user_id))
        s.commit()
    clerk = ApiClient(app.test_client(), token)
    assert clerk.get(f"{ADMIN}/objects").status_code == 403
    assert clerk.post(f"{ADMIN}/objects", json=EQUIPMENT).status_code == 403
    assert ApiClient(app.test_client(), None).get(f"{ADMIN}/versions").status_code == 401


# -- objects ------------------------------------------------------------------------------
def test_objects_are_listed_with_their_field_count(api):
    items = {i["name"]: i for i in ok(api.get(f"{ADMIN}/objects"))["items"]}
    assert items["customer"]["label"] == {"en": "Customer", "zh": "客户"}
    assert items["customer"]["archived"] is False and items["customer"]["fields"] > 10


def test_a_created_object_is_a_new_version_and_takes_records(api):
    before = newest(api)
    response = api.post(f"{ADMIN}/objects", json=EQUIPMENT)
    body = ok(response, 201)
    assert body["version"] == before + 1 == newest(api)
    assert "object equipment: added" in body["diff"]
    assert response.headers["Location"].endswith(f"{ADMIN}/objects/equipment")
    assert document(api)["title_field"] == "name"
    assert record(api, name="Lathe")["name"] == "Lathe"


def test_an_object_document_is_the_effective_metadata(api):
    doc = document(api, "customer")
    assert doc["object"] == "customer" and doc["label"]["zh"] == "客户"
    assert any(f["name"] == "level" for f in doc["fields"])


def test_a_missing_object_is_404(api):
    assert api.get(f"{ADMIN}/objects/spaceship").status_code == 404


def test_a_duplicate_object_is_refused_and_nothing_changes(equipment, english_admin):
    before = newest(equipment)
    [problem] = problems(equipment.post(f"{ADMIN}/objects", json=EQUIPMENT))
    assert problem["path"] == "object" and "already exists" in problem["message"]
    assert newest(equipment) == before


def test_an_unknown_body_key_is_422_naming_it(api):
    before = newest(api)
    response = api.post(f"{ADMIN}/objects", json={**EQUIPMENT, "colour": "red"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"colour"}
    assert newest(api) == before


def test_an_object_is_relabelled(equipment):
    ok(equipment.patch(f"{ADMIN}/objects/equipment", json={"label": label("Machines", "机器")}))
    assert document(equipment)["label"] == label("Machines", "机器")


def test_a_bad_object_setting_names_its_path(equipment, english_admin):
    before = newest(equipment)
    found = problems(equipment.patch(f"{ADMIN}/objects/equipment",
                                     json={"title_field": "nothing"}))
    assert found == [{"path": "title_field", "message": "'nothing' is not a field of equipment",
                      "document": "object equipment"}]
    assert newest(equipment) == before


# -- fields -------------------------------------------------------------------------------
def test_an_added_field_is_accepted_by_the_records_api_at_once(equipment):
    body = ok(add_field(equipment, {"name": "serial_no", "type": "text",
                                    "label": label("Serial", "序列号")}), 201)
    assert body["changes"] == ["add column equipment.serial_no (text)"]
    assert record(equipment, name="Lathe", serial_no="S-1")["serial_no"] == "S-1"


def test_a_duplicate_field_name_is_refused_and_nothing_changes(equipment, english_admin):
    before = newest(equipment)
    [problem] = problems(add_field(equipment, {"name": "name", "type": "text",
                                               "label": label("Name")}))
    assert problem == {"path": "name", "message": "a field named 'name' already exists"}
    assert newest(equipment) == before


def test_a_reserved_word_is_refused_with_its_path(equipment, english_admin, engine):
    before = newest(equipment)
    [problem] = problems(add_field(equipment, {"name": "select", "type": "text",
                                               "label": label("Select")}))
    assert problem["path"] == "fields[1].name"
    assert problem["message"] == "'select' is an SQL reserved word"
    assert newest(equipment) == before
    assert "select" not in {c["name"] for c in sa.inspect(engine).get_columns("o_equipment")}


def test_a_chinese_admin_reads_the_refusal_in_chinese(equipment, engine, admin):
    with Session(engine) as s, s.begin():
        users.set_language(s, admin, "zh")
    [problem] = problems(add_field(equipment, {"name": "select", "type": "text",
                                               "label": label("Select")}))
    assert problem["path"] == "fields[1].name"
    assert problem["message"] == "“select”是 SQL 保留字，不能用作名称"


def test_a_lookup_to_a_missing_object_is_refused(equipment, english_admin):
    before = newest(equipment)
    response = add_field(equipment, {"name": "site", "type": "lookup", "target": "nowhere",
                                     "label": label("Site")})
    [problem] = problems(response)
    assert problem["path"] == "fields[1].target" and "'nowhere'" in problem["message"]
    assert response.get_json()["error"]["fields"] == {"fields[1].target": problem["message"]}
    assert newest(equipment) == before


def test_an_unknown_field_setting_is_422_naming_it(equipment):
    response = add_field(equipment, {"name": "site", "type": "text", "label": label("Site"),
                                     "colour": "red"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"colour"}


def test_a_type_change_over_values_is_refused_with_the_records_in_the_way(with_code):
    good, bad = record(with_code, name="Lathe", code="12"), record(with_code, name="Drill",
                                                                    code="twelve")
    before = newest(with_code)
    url = f"{ADMIN}/objects/equipment/fields/code"
    response = with_code.patch(url, json={"type": "integer"})
    assert response.get_json()["error"]["code"] == "schema_change_refused"
    [refused] = problems(response, 409)
    assert refused["path"] == "equipment.code" and refused["conversion"] == "convert"
    assert refused["count"] == 2 and set(refused["sample"]) == {good["id"], bad["id"]}
    assert newest(with_code) == before
    assert fields_of(with_code)["code"]["type"] == "text"
    assert read(with_code, bad["id"])["code"] == "twelve"


def test_a_type_change_previews_then_converts_with_a_conversion(with_code):
    good, bad = record(with_code, name="Lathe", code="12"), record(with_code, name="Drill",
                                                                    code="twelve")
    before = newest(with_code)
    url = f"{ADMIN}/objects/equipment/fields/code"
    change = {"type": "integer", "conversions": {"code": {"action": "convert"}}}
    shown = ok(with_code.patch(url, json=change, query_string={"preview": 1}))
    assert shown["preview"] is True and shown["refused"] == []
    assert any("code" in c for c in shown["changes"]) and shown["diff"]
    assert newest(with_code) == before and read(with_code, bad["id"])["code"] == "twelve"
    ok(with_code.patch(url, json=change))
    assert newest(with_code) == before + 1
    assert (read(with_code, good["id"])["code"], read(with_code, bad["id"])["code"]) == (12, None)


def test_a_preview_shows_what_is_refused_and_keeps_nothing(with_code):
    blank = record(with_code, name="Lathe")
    before = newest(with_code)
    shown = ok(with_code.patch(f"{ADMIN}/objects/equipment/fields/code",
                               json={"required": True}, query_string={"preview": "1"}))
    [refused] = shown["refused"]
    assert (refused["count"], refused["sample"], refused["conversion"]) == (
        1, [blank["id"]], "fill")
    assert "required" in " ".join(shown["diff"])
    assert newest(with_code) == before and "required" not in fields_of(with_code)["code"]


def test_a_required_field_fills_the_blanks_with_a_fill_conversion(with_code):
    blank = record(with_code, name="Lathe")
    refused = with_code.patch(f"{ADMIN}/objects/equipment/fields/code",
                              json={"required": True})
    assert refused.status_code == 409
    ok(with_code.patch(f"{ADMIN}/objects/equipment/fields/code", json={
        "required": True, "conversions": {"code": {"action": "fill", "value": "C-0"}}}))
    assert read(with_code, blank["id"])["code"] == "C-0"


def test_a_bad_conversion_is_422(with_code):
    response = with_code.patch(f"{ADMIN}/objects/equipment/fields/code", json={
        "required": True, "conversions": {"code": {"action": "guess"}}})
    assert response.status_code == 422
    assert "conversions.code" in response.get_json()["error"]["fields"]


def test_null_removes_a_field_setting(equipment):
    ok(add_field(equipment, {"name": "site", "type": "text", "label": label("Site"),
                             "help": label("Where it is")}), 201)
    ok(equipment.patch(f"{ADMIN}/objects/equipment/fields/site", json={"help": None}))
    assert "help" not in fields_of(equipment)["site"]


def test_a_field_cannot_be_renamed(with_code):
    [problem] = problems(with_code.patch(f"{ADMIN}/objects/equipment/fields/code",
                                         json={"name": "number"}))
    assert problem["path"] == "name"


def test_fields_are_reordered(with_code):
    ok(put(with_code, f"{ADMIN}/objects/equipment/fields/order",
           json={"fields": ["code", "name"]}))
    assert list(fields_of(with_code))[:2] == ["code", "name"]
    [problem] = problems(put(with_code, f"{ADMIN}/objects/equipment/fields/order",
                             json={"fields": ["code", "ghost"]}))
    assert problem["path"] == "order" and "ghost" in problem["message"]


def test_an_archived_field_keeps_its_data_and_comes_back_on_restore(with_code):
    row = record(with_code, name="Lathe", code="A1")
    ok(with_code.post(f"{ADMIN}/objects/equipment/fields/code/archive"))
    refused = with_code.post("/api/v1/objects/equipment/records", json={"name": "X",
                                                                        "code": "B"})
    assert refused.status_code == 422
    ok(with_code.post(f"{ADMIN}/objects/equipment/fields/code/restore"))
    assert read(with_code, row["id"])["code"] == "A1"


def test_the_title_field_cannot_be_archived(equipment):
    [problem] = problems(equipment.post(f"{ADMIN}/objects/equipment/fields/name/archive"))
    assert problem["path"] == "field"


def test_purge_asks_for_the_number_of_values_it_deletes(with_code, engine):
    record(with_code, name="Lathe", code="A1")
    record(with_code, name="Drill")
    url = f"{ADMIN}/objects/equipment/fields/code"
    assert problems(with_code.post(f"{url}/purge", json={"confirm": 0}))[0]["path"] == "field"
    ok(with_code.post(f"{url}/archive"))
    before = newest(with_code)
    wrong = with_code.post(f"{url}/purge", json={"confirm": 2})
    assert wrong.status_code == 409 and wrong.get_json()["error"]["count"] == 1
    assert newest(with_code) == before
    ok(with_code.post(f"{url}/purge", json={"confirm": 1}))
    assert "code" not in {c["name"] for c in sa.inspect(engine).get_columns("o_equipment")}
    assert "code" not in fields_of(with_code)


# -- picklists ----------------------------------------------------------------------------
PRIORITY = {"name": "priority", "label": label("Priority", "优先级"),
            "options": [{"value": "high", "label": label("High", "高")},
                        {"value": "low", "label": label("Low", "低")}]}


def picklist(api: ApiClient, name: str = "priority") -> dict:
    return next(p for p in ok(api.get(f"{ADMIN}/picklists"))["items"] if p["name"] == name)


def test_picklists_are_listed(api):
    assert picklist(api, "industry")["options"]


def test_a_picklist_is_created_and_its_options_edited(api):
    ok(api.post(f"{ADMIN}/picklists", json=PRIORITY), 201)
    url = f"{ADMIN}/picklists/priority/options"
    ok(api.post(url, json={"value": "mid", "label": label("Middle", "中")}), 201)
    ok(api.patch(f"{url}/low", json={"active": False, "color": "#cccccc"}))
    ok(put(api, f"{url}/order", json={"values": ["high", "mid", "low"]}))
    options = picklist(api)["options"]
    assert [o["value"] for o in options] == ["high", "mid", "low"]
    assert options[2]["active"] is False and options[2]["color"] == "#cccccc"


def test_bad_picklist_edits_name_their_path_and_change_nothing(api):
    ok(api.post(f"{ADMIN}/picklists", json=PRIORITY), 201)
    before = newest(api)
    url = f"{ADMIN}/picklists/priority/options"
    assert problems(api.post(f"{ADMIN}/picklists", json=PRIORITY))[0]["path"] == "name"
    assert problems(api.post(url, json={"value": "high", "label": label("H")}))[0][
        "path"] == "value"
    renamed = api.patch(f"{url}/high", json={"value": "top"})
    assert renamed.status_code == 422 and "value" in renamed.get_json()["error"]["fields"]
    assert problems(put(api, f"{url}/order", json={"values": ["high"]}))[0]["path"] == "order"
    assert problems(api.post(f"{ADMIN}/picklists/nothing/options",
                             json={"value": "x", "label": label("X")}))[0]["path"] == "picklist"
    assert newest(api) == before


# -- business types and layouts -----------------------------------------------------------
def test_a_business_type_in_use_cannot_be_removed(equipment):
    url = f"{ADMIN}/objects/equipment/business_types"
    ok(put(equipment, f"{url}/retail", json={"label": label("Retail", "零售")}))
    ok(put(equipment, f"{url}/wholesale", json={"label": label("Wholesale", "批发")}))
    assert [b["name"] for b in document(equipment)["business_types"]] == ["retail", "wholesale"]
    record(equipment, name="Lathe", business_type="wholesale")
    before = newest(equipment)
    used = equipment.delete(f"{url}/wholesale")
    assert used.status_code == 409 and used.get_json()["error"]["count"] == 1
    assert newest(equipment) == before
    ok(equipment.delete(f"{url}/retail"))
    assert [b["name"] for b in document(equipment)["business_types"]] == ["wholesale"]


def test_a_business_type_is_named_by_its_address(equipment):
    response = put(equipment, f"{ADMIN}/objects/equipment/business_types/retail",
                   json={"name": "other", "label": label("Retail")})
    assert response.status_code == 422 and "name" in response.get_json()["error"]["fields"]


def test_layouts_are_replaced_and_checked(with_code, english_admin):
    url = f"{ADMIN}/objects/equipment/layouts"
    form = [{"label": label("Main", "基本"), "fields": ["code", "name"]}]
    ok(put(with_code, url, json={"form": form, "list": {"columns": ["name", "code"]}}))
    assert document(with_code)["layouts"]["form"] == form
    before = newest(with_code)
    [problem] = problems(put(with_code, url, json={"form": [{"label": label("Main"),
                                                             "fields": ["ghost"]}]}))
    assert problem["path"] == "layouts.form[0].fields[0]" and "'ghost'" in problem["message"]
    assert newest(with_code) == before


# -- versions -----------------------------------------------------------------------------
def test_versions_are_listed_newest_first_and_paged(with_code):
    first = ok(with_code.get(f"{ADMIN}/versions", query_string={"limit": 1}))
    [latest] = first["items"]
    assert latest["actor"] == "admin" and latest["summary"] == "add field equipment.code"
    more = ok(with_code.get(f"{ADMIN}/versions", query_string={"before": first["next_before"]}))
    assert more["items"][0]["version"] == latest["version"] - 1


def test_a_version_shows_its_diff(with_code):
    body = ok(with_code.get(f"{ADMIN}/versions/{newest(with_code)}"))
    assert body["diff"] == ["object equipment › fields › code: added"]
    assert with_code.get(f"{ADMIN}/versions/9999").status_code == 404


def test_a_rollback_archives_what_was_added_since(with_code):
    target = newest(with_code) - 1
    shown = ok(with_code.post(f"{ADMIN}/versions/{target}/rollback",
                              query_string={"preview": 1}))
    assert shown["preview"] is True and shown["diff"]
    assert "archived" not in fields_of(with_code)["code"]
    body = ok(with_code.post(f"{ADMIN}/versions/{target}/rollback"))
    assert body["version"] == newest(with_code) == target + 2
    assert fields_of(with_code)["code"]["archived"] is True
    assert with_code.post(f"{ADMIN}/versions/9999/rollback").status_code == 404
