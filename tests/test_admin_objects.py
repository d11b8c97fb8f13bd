"""The object manager (/admin/objects) through its web pages, on SQLite and PostgreSQL:
objects, fields of every kind, order, archive and purge, and the preview of a change
the data refuses. A refused change leaves the metadata version and the data as they were."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import customise
from metacrm.engine.access import users
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records
from metacrm.metadata import edits

from conftest import signed_in

EQUIPMENT = {"object": "equipment", "label": {"en": "Equipment", "zh": "设备"},
             "features": ["owner"], "title": {"name": "name",
                                              "label": {"en": "Name", "zh": "名称"}}}
BASE = "/admin/objects/equipment"


def version(engine) -> int:
    return customise.history(engine, limit=1)[0].version


def registry_of(engine):
    with Session(engine) as session:
        return metastore.load_registry(session)


def field_of(engine, name: str, object_name: str = "equipment"):
    return registry_of(engine).objects[object_name].all_fields.get(name)


def columns(engine, table: str = "o_equipment") -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def change(engine, edit) -> None:
    customise.change(engine, "admin", "test set-up", edit)


def create(engine, admin, **values) -> int:
    with Session(engine) as session, session.begin():
        return records.create(session, registry_of(engine), "equipment", values,
                              actor=admin)["id"]


def value_of(engine, record_id: int, field: str):
    with engine.connect() as conn:
        table = sa.table("o_equipment", sa.column("id"), sa.column(field))
        return conn.execute(sa.select(table.c[field]).where(table.c.id == record_id)).scalar()


def text_field(name: str, **extra) -> dict:
    return {"name": name, "type": "text", "label": {"en": name.title(), "zh": name}, **extra}


@pytest.fixture
def equipment(engine):
    change(engine, lambda d: edits.create_object(d, EQUIPMENT))
    return engine


def field_form(name: str, en: str, zh: str, **settings) -> dict:
    return {"name": name, "label_en": en, "label_zh": zh, **settings}


def add_field(web, field_type: str, form: dict):
    return web.post(f"{BASE}/fields/new?type={field_type}", {"type": field_type, **form})


def problems_of(response) -> list[str]:
    html = response.get_data(as_text=True)
    return re.findall(r'<li class="problem" data-path="([^"]*)"', html)


# -- access and the list --------------------------------------------------------------------
def test_other_users_may_not_open_the_object_manager(app, admin, engine):
    with Session(engine) as s, s.begin():
        users.create_user(s, "clerk", "user-password")
    clerk = signed_in(app, "clerk", "user-password")
    assert clerk.get("/admin/objects").status_code == 403
    assert clerk.post("/admin/objects/new", {"object": "sneaky"}).status_code == 403


def test_the_list_shows_each_object_with_its_api_name_and_field_count(english, registry):
    html = english.text("/admin/objects")
    product = registry.objects["product"]
    row = re.search(r'<tr data-object="product".*?</tr>', html, re.S).group(0)
    assert "<code>product</code>" in row and f">{len(product.active_fields)}<" in row
    assert product.label.en in row


def test_the_admin_navigation_links_the_object_manager(english):
    assert 'href="/admin/objects"' in english.text("/admin/objects")


# -- objects --------------------------------------------------------------------------------
def test_an_admin_creates_an_object_with_its_title_field_and_features(english, engine):
    response = english.post("/admin/objects/new", {
        "object": "equipment", "label_zh": "设备", "label_en": "Equipment", "icon": "box",
        "group": "basics", "title_name": "name", "title_label_zh": "名称",
        "title_label_en": "Name", "feature_owner": "1", "feature_audit": "1"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(BASE)
    obj = registry_of(engine).objects["equipment"]
    assert (obj.label.zh, obj.icon, obj.group, obj.title_field) == ("设备", "box", "basics",
                                                                    "name")
    assert obj.features == ("owner", "audit")
    assert "name" in columns(engine)
    assert "Equipment" in english.text(BASE)


def test_a_new_object_with_a_bad_api_name_is_refused_with_what_was_typed(english, engine):
    before = version(engine)
    response = english.post("/admin/objects/new", {
        "object": "Bad Name", "label_zh": "坏", "label_en": "Bad"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "object" in problems_of(response) and 'value="Bad Name"' in html
    assert version(engine) == before


def test_object_settings_are_saved(english, equipment):
    response = english.post(BASE, {"label_zh": "设备资产", "label_en": "Assets",
                                   "icon": "tools", "title_field": "name",
                                   "search_fields": "name", "feature_team": "1"})
    assert response.status_code == 302
    obj = registry_of(equipment).objects["equipment"]
    assert (obj.label.en, obj.icon, obj.features, obj.search_fields) == (
        "Assets", "tools", ("team",), ("name",))


# -- adding fields --------------------------------------------------------------------------
ADDED = {
    "text": ({"max_length": "40", "unique": "1"},
             lambda f: (f.max_length, f.unique) == (40, True)),
    "select": ({"options_source": "own", "options": "in_use|In use|在用\nidle|Idle|闲置",
                "default": "idle"},
               lambda f: ([o.value for o in f.options], f.default) == (["in_use", "idle"],
                                                                       "idle")),
    "multiselect": ({"options_source": "picklist", "picklist": "source"},
                    lambda f: f.picklist == "source"),
    "date": ({"indexed": "1"}, lambda f: f.indexed),
    "decimal": ({"precision": "12", "scale": "3"}, lambda f: (f.precision, f.scale) == (12, 3)),
    "lookup": ({"target": "product"}, lambda f: f.target == "product"),
    "boolean": ({"default": "true"}, lambda f: f.default is True),
    "auto_number": ({"pattern": "EQ-{seq:4}"}, lambda f: f.pattern == "EQ-{seq:4}"),
    "region": ({"region_level": "2"}, lambda f: f.region_level == 2),
    "formula": ({"expression": "len(name)", "returns": "integer"},
                lambda f: (f.expression, f.returns) == ("len(name)", "integer")),
    "currency": ({"currency_symbol": "$", "precision": "14"},
                 lambda f: (f.currency_symbol, f.precision) == ("$", 14)),
    "email": ({"unique": "1"}, lambda f: f.unique),
    "user": ({"required": "1"}, lambda f: f.required),
    "textarea": ({"max_length": "500", "help_en": "Notes", "help_zh": "备注"},
                 lambda f: (f.max_length, f.help.zh) == (500, "备注")),
}


@pytest.mark.parametrize("field_type", sorted(ADDED))
def test_a_field_of_each_kind_is_added_with_its_settings(english, equipment, field_type):
    settings, check = ADDED[field_type]
    response = add_field(english, field_type, field_form("thing", "Thing", "东西", **settings))
    assert response.status_code == 302, problems_of(response)
    added = field_of(equipment, "thing")
    assert added.type == field_type and added.label.zh == "东西"
    assert check(added)


def test_a_roll_up_summarises_the_related_records(english, engine):
    response = english.post("/admin/objects/customer/fields/new?type=rollup", {
        "type": "rollup", **field_form("deal_count", "Deals", "商机数"),
        "rollup_object": "opportunity", "rollup_via": "customer", "rollup_function": "count"})
    assert response.status_code == 302, problems_of(response)
    rollup = field_of(engine, "deal_count", "customer").rollup
    assert (rollup.object, rollup.via, rollup.function) == ("opportunity", "customer", "count")


def test_the_form_shows_only_the_settings_of_the_chosen_type(english, equipment):
    select_form = english.text(f"{BASE}/fields/new?type=select")
    date_form = english.text(f"{BASE}/fields/new?type=date")
    assert 'data-setting="options"' in select_form and 'data-setting="options"' not in date_form
    assert 'data-setting="max_length"' not in date_form


def test_every_field_type_has_a_form(english, equipment):
    from metacrm.metadata.fieldtypes import FIELD_TYPES

    chooser = english.text(f"{BASE}/fields/new")
    for name in FIELD_TYPES:
        assert f'data-type="{name}"' in chooser
        assert english.get(f"{BASE}/fields/new?type={name}").status_code == 200


# -- refused through the admin --------------------------------------------------------------
@pytest.mark.parametrize("form, path", [
    (field_form("name", "Name", "名称"), "name"),
    (field_form("select", "Select", "选择"), "fields[1].name"),
])
def test_a_taken_or_reserved_name_is_refused_and_nothing_changes(english, equipment, form,
                                                                 path):
    before = version(equipment)
    response = add_field(english, "text", form)
    assert response.status_code == 422
    assert problems_of(response) == [path]
    assert f'value="{form["name"]}"' in response.get_data(as_text=True)
    assert version(equipment) == before and "select" not in columns(equipment)


def test_a_lookup_to_a_missing_object_is_refused_next_to_its_input(english, equipment):
    before = version(equipment)
    response = english.post(f"{BASE}/fields/new?type=lookup", {
        "type": "lookup", **field_form("site", "Site", "场地"), "target": "nowhere"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'data-field="target">[^<]*nowhere', html)
    assert version(equipment) == before and "site" not in columns(equipment)


def test_a_type_change_over_values_that_cannot_convert_is_refused(english, equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("code")))
    record = create(equipment, admin, name="Lathe", code="A-1")
    before = version(equipment)
    response = english.post(f"{BASE}/fields/code/edit?type=lookup", {
        "type": "lookup", "label_en": "Code", "label_zh": "code", "target": "product"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert f'/o/equipment/{record}"' in html and 'data-conversion=""' in html
    assert 'id="preview-change"' not in html
    assert version(equipment) == before and value_of(equipment, record, "code") == "A-1"
    assert field_of(equipment, "code").type == "text"


def test_a_smallest_value_set_in_the_editor_refuses_a_record_below_it(english, equipment):
    response = add_field(english, "currency", field_form("price", "Price", "价格"))
    assert response.status_code == 302, problems_of(response)
    form = english.text(f"{BASE}/fields/price/edit")
    assert 'data-setting="min"' in form and 'data-setting="max"' in form
    response = english.post(f"{BASE}/fields/price/edit", {
        "type": "currency", "label_en": "Price", "label_zh": "价格", "min": "100"})
    assert response.status_code == 302, problems_of(response)
    assert field_of(equipment, "price").min_value == 100
    english.text("/o/equipment/new")  # the form's CSRF token
    refused = english.post("/o/equipment/new", {"name": "Lathe", "price": "99.99"})
    accepted = english.post("/o/equipment/new", {"name": "Drill", "price": "100"})
    assert refused.status_code == 422 and accepted.status_code == 302
    assert "must be at least 100" in refused.get_data(as_text=True)
    with equipment.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM o_equipment")).scalars().all() == \
            ["Drill"]


# -- editing, order, archive ----------------------------------------------------------------
def test_editing_a_label_changes_the_label_only(english, equipment):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    form = english.text(f"{BASE}/fields/site/edit")
    assert 'value="Site"' in form
    response = english.post(f"{BASE}/fields/site/edit", {
        "type": "text", "label_en": "Location", "label_zh": "位置"})
    assert response.status_code == 302
    lines = [str(line) for line in customise.version_diff(equipment, version(equipment))]
    assert lines == ['object equipment › fields › site › label › en: "Site" → "Location"',
                     'object equipment › fields › site › label › zh: "site" → "位置"']


def test_a_field_moves_up(english, equipment):
    for name in ("site", "serial"):
        change(equipment, lambda d, n=name: edits.add_field(d, "equipment", text_field(n)))
    response = english.post(f"{BASE}/fields/serial/move", {"direction": "up"})
    assert response.status_code == 302
    names = [f.name for f in registry_of(equipment).objects["equipment"].fields]
    assert names == ["name", "serial", "site"]


def test_an_archived_field_is_restored_with_its_data(english, equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    record = create(equipment, admin, name="Lathe", site="Plant 1")
    english.post(f"{BASE}/fields/site/archive")
    assert field_of(equipment, "site").archived
    assert 'data-action="purge"' in english.text(BASE)
    english.post(f"{BASE}/fields/site/restore")
    assert not field_of(equipment, "site").archived
    assert value_of(equipment, record, "site") == "Plant 1"


def test_the_title_field_cannot_be_archived(english, equipment):
    response = english.post(f"{BASE}/fields/name/archive", follow_redirects=True)
    assert "title field cannot be archived" in response.get_data(as_text=True)
    assert not field_of(equipment, "name").archived


# -- purge ----------------------------------------------------------------------------------
@pytest.fixture
def archived_site(equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    for site in ("Plant 1", "Plant 2", None):
        create(equipment, admin, name="Lathe", site=site)
    change(equipment, lambda d: edits.archive_field(d, "equipment", "site"))
    return equipment


def test_the_purge_page_names_how_many_values_are_lost(english, archived_site):
    html = english.text(f"{BASE}/fields/site/purge")
    assert re.search(r"\b2 value\(s\) of this field will be lost", html)


def test_purge_needs_the_number_of_values_typed(english, archived_site):
    before = version(archived_site)
    response = english.post(f"{BASE}/fields/site/purge", {"confirm_count": "3"})
    assert response.status_code == 422
    assert version(archived_site) == before and "site" in columns(archived_site)


def test_a_confirmed_purge_drops_the_column(english, archived_site):
    response = english.post(f"{BASE}/fields/site/purge", {"confirm_count": "2"})
    assert response.status_code == 302
    assert "site" not in columns(archived_site) and field_of(archived_site, "site") is None


def test_an_active_field_is_not_purged(english, equipment):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    english.post(f"{BASE}/fields/site/purge", {"confirm_count": "0"})
    assert "site" in columns(equipment)


# -- previews of risky changes --------------------------------------------------------------
def test_a_required_field_over_blanks_shows_the_records_and_a_fill_form(english, equipment,
                                                                        admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    blank = create(equipment, admin, name="Lathe")
    create(equipment, admin, name="Drill", site="Plant 1")
    before = version(equipment)
    response = english.post(f"{BASE}/fields/site/edit", {
        "type": "text", "label_en": "Site", "label_zh": "site", "required": "1"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "1 record(s) are in the way" in html and f'href="/o/equipment/{blank}"' in html
    assert 'name="fill:equipment.site"' in html
    assert version(equipment) == before and not field_of(equipment, "site").required


def test_a_fill_value_is_previewed_then_fills_the_blanks(english, equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("site")))
    blank = create(equipment, admin, name="Lathe")
    form = {"type": "text", "label_en": "Site", "label_zh": "site", "required": "1",
            "fill:equipment.site": "Plant 9"}
    previewed = english.post(f"{BASE}/fields/site/edit", {**form, "_step": "preview"})
    assert previewed.status_code == 200
    assert "1 record(s) without a value get Plant 9" in previewed.get_data(as_text=True)
    assert value_of(equipment, blank, "site") is None
    applied = english.post(f"{BASE}/fields/site/edit", {**form, "_step": "apply"})
    assert applied.status_code == 302
    assert value_of(equipment, blank, "site") == "Plant 9"
    assert field_of(equipment, "site").required


def test_a_new_required_field_without_a_default_asks_for_a_fill_value(english, equipment,
                                                                      admin):
    create(equipment, admin, name="Lathe")
    before = version(equipment)
    response = add_field(english, "text", field_form("site", "Site", "场地", required="1"))
    assert response.status_code == 409
    assert 'name="fill:equipment.site"' in response.get_data(as_text=True)
    assert version(equipment) == before and "site" not in columns(equipment)


def test_a_fill_value_that_does_not_fit_is_asked_again(english, equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", {
        "name": "weight", "type": "integer", "label": {"en": "Weight", "zh": "重量"}}))
    create(equipment, admin, name="Lathe")
    before = version(equipment)
    response = english.post(f"{BASE}/fields/weight/edit", {
        "type": "integer", "label_en": "Weight", "label_zh": "重量", "required": "1",
        "fill:equipment.weight": "heavy", "_step": "preview"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "does not fit the field" in html and 'name="fill:equipment.weight"' in html
    assert version(equipment) == before


def test_a_type_change_previews_the_values_lost_then_converts(english, equipment, admin):
    change(equipment, lambda d: edits.add_field(d, "equipment", text_field("code")))
    good = create(equipment, admin, name="Lathe", code="12")
    bad = create(equipment, admin, name="Drill", code="twelve")
    form = {"type": "integer", "label_en": "Code", "label_zh": "code"}
    refused = english.post(f"{BASE}/fields/code/edit?type=integer", form)
    assert refused.status_code == 409
    assert 'name="convert:equipment.code"' in refused.get_data(as_text=True)
    form["convert:equipment.code"] = "1"
    previewed = english.post(f"{BASE}/fields/code/edit?type=integer",
                             {**form, "_step": "preview"})
    html = previewed.get_data(as_text=True)
    assert "1 value(s) of code do not convert and will be cleared" in html
    assert f'href="/o/equipment/{bad}"' in html
    assert field_of(equipment, "code").type == "text"
    applied = english.post(f"{BASE}/fields/code/edit?type=integer", {**form, "_step": "apply"})
    assert applied.status_code == 302
    assert field_of(equipment, "code").type == "integer"
    assert (value_of(equipment, good, "code"), value_of(equipment, bad, "code")) == (12, None)


def test_saving_an_unchanged_field_form_changes_nothing(english, engine, registry):
    """Every field of the sample, as its edit form shows it, saves to the same definition."""
    from metacrm.ui.admin.fields import values_of

    before = version(engine)
    for obj in registry.active_objects:
        for f in obj.fields:
            form = {k: ("1" if v is True else v) for k, v in values_of(f).items()
                    if v is not False and v is not None}
            response = english.post(f"/admin/objects/{obj.name}/fields/{f.name}/edit",
                                    {"type": f.type, **form})
            assert response.status_code == 302, (obj.name, f.name, problems_of(response))
    assert version(engine) == before


def test_every_field_of_the_sample_opens_in_its_edit_form(english, registry):
    for obj in registry.active_objects:
        assert english.get(f"/admin/objects/{obj.name}").status_code == 200
        for f in obj.fields:
            html = english.text(f"/admin/objects/{obj.name}/fields/{f.name}/edit")
            assert f'name="type" value="{f.type}"' in html
