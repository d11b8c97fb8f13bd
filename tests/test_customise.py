"""Admin changes to a running instance's metadata (engine level), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import customise
from metacrm.engine.errors import SchemaChangeRefused, ValidationFailed
from metacrm.engine.schema import metastore
from metacrm.engine.schema.schema_sync import Conversion, PlanOptions
from metacrm.engine.writing import records
from metacrm.metadata import edits
from metacrm.metadata.edits import EditRefused
from metacrm.metadata.problems import DefinitionError

EQUIPMENT = {"object": "equipment", "label": {"en": "Equipment", "zh": "设备"},
             "icon": "box", "features": ["owner", "audit"],
             "title": {"name": "name", "label": {"en": "Name", "zh": "名称"}}}


def label(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


def run(engine, edit, **kw) -> customise.Outcome:
    return customise.change(engine, "admin", "test change", edit, **kw)


def registry_of(engine):
    with Session(engine) as session:
        return metastore.load_registry(session)


def create(engine, admin, object_name: str, **values) -> dict:
    with Session(engine) as session, session.begin():
        return records.create(session, registry_of(engine), object_name, values, actor=admin)


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


@pytest.fixture
def equipment(engine):
    run(engine, lambda d: edits.create_object(d, EQUIPMENT))
    return engine


def add(engine, raw: dict, **kw) -> customise.Outcome:
    return run(engine, lambda d: edits.add_field(d, "equipment", raw), **kw)


# -- objects and fields ---------------------------------------------------------------------
def test_a_created_object_has_a_table_and_takes_records(equipment, admin):
    assert "o_equipment" in sa.inspect(equipment).get_table_names()
    row = create(equipment, admin, "equipment", name="Lathe")
    assert row["name"] == "Lathe"


def test_an_added_field_is_a_column_at_once(equipment, admin):
    add(equipment, {"name": "serial_no", "type": "text", "label": label("Serial", "序列号"),
                    "unique": True})
    assert "serial_no" in columns(equipment, "o_equipment")
    row = create(equipment, admin, "equipment", name="Lathe", serial_no="S-1")
    assert row["serial_no"] == "S-1"


def test_every_change_is_a_version_with_its_author_and_diff(equipment):
    outcome = add(equipment, {"name": "weight", "type": "decimal",
                              "label": label("Weight", "重量")})
    latest = customise.history(equipment, limit=1)[0]
    assert (latest.version, latest.actor) == (outcome.version, "admin")
    lines = [str(line) for line in customise.version_diff(equipment, outcome.version)]
    assert lines == ["object equipment › fields › weight: added"]


def test_a_duplicate_field_name_is_refused_and_nothing_changes(equipment):
    before = customise.history(equipment, limit=1)[0].version
    with pytest.raises(EditRefused, match="already exists"):
        add(equipment, {"name": "name", "type": "text", "label": label("Name", "名称")})
    assert customise.history(equipment, limit=1)[0].version == before


def test_a_reserved_word_is_refused_with_its_path(equipment):
    with pytest.raises(DefinitionError) as refused:
        add(equipment, {"name": "select", "type": "text", "label": label("S", "S")})
    assert "fields[1].name" in str(refused.value)
    assert "select" not in columns(equipment, "o_equipment")


def test_a_lookup_to_a_missing_object_is_refused(equipment):
    with pytest.raises(DefinitionError, match="nowhere"):
        add(equipment, {"name": "site", "type": "lookup", "target": "nowhere",
                        "label": label("Site", "场地")})


def test_a_duplicate_object_name_is_refused(equipment):
    with pytest.raises(EditRefused, match="already exists"):
        run(equipment, lambda d: edits.create_object(d, EQUIPMENT))


# -- required fields, defaults and previews -------------------------------------------------
def test_a_new_required_field_with_a_default_fills_the_existing_records(equipment, admin):
    old = create(equipment, admin, "equipment", name="Lathe")
    add(equipment, {"name": "status", "type": "select", "required": True, "default": "in_use",
                    "label": label("Status", "状态"),
                    "options": [{"value": "in_use", "label": label("In use", "在用")},
                                {"value": "idle", "label": label("Idle", "闲置")}]})
    with Session(equipment) as session:
        row = records.get(session, registry_of(equipment), "equipment", old["id"], actor=admin)
    assert row["status"] == "in_use"
    with pytest.raises(ValidationFailed):
        create(equipment, admin, "equipment", name="Drill", status=None)


def test_a_new_required_field_without_a_default_is_refused_over_existing_records(
        equipment, admin):
    create(equipment, admin, "equipment", name="Lathe")
    with pytest.raises(SchemaChangeRefused) as refused:
        add(equipment, {"name": "site", "type": "text", "required": True,
                        "label": label("Site", "场地")})
    assert refused.value.changes[0].conversion == "fill"
    assert "site" not in columns(equipment, "o_equipment")
    assert "site" not in registry_of(equipment).objects["equipment"].all_fields


def test_making_a_field_required_previews_the_records_that_would_fail(equipment, admin):
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地")})
    blank = create(equipment, admin, "equipment", name="Lathe")
    create(equipment, admin, "equipment", name="Drill", site="Plant 1")
    outcome = run(equipment, lambda d: edits.update_field(d, "equipment", "site",
                                                          {"required": True}), preview=True)
    [refused] = outcome.plan.refused
    assert (refused.count, refused.sample) == (1, [blank["id"]])
    assert not registry_of(equipment).objects["equipment"].all_fields["site"].required


def test_making_a_field_required_with_a_fill_value_fills_the_blanks(equipment, admin):
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地")})
    blank = create(equipment, admin, "equipment", name="Lathe")
    options = PlanOptions({"equipment.site": Conversion("fill", "Plant 1")})
    run(equipment, lambda d: edits.update_field(d, "equipment", "site", {"required": True}),
        options=options)
    with Session(equipment) as session:
        row = records.get(session, registry_of(equipment), "equipment", blank["id"], actor=admin)
    assert row["site"] == "Plant 1"


# -- type changes ---------------------------------------------------------------------------
def test_a_type_change_over_values_is_refused_without_a_conversion(equipment, admin):
    add(equipment, {"name": "code", "type": "text", "label": label("Code", "编码")})
    create(equipment, admin, "equipment", name="Lathe", code="12")
    with pytest.raises(SchemaChangeRefused) as refused:
        run(equipment, lambda d: edits.update_field(d, "equipment", "code",
                                                    {"type": "integer"}))
    assert refused.value.changes[0].conversion == "convert"
    assert registry_of(equipment).objects["equipment"].all_fields["code"].type == "text"


def test_a_type_change_with_convert_keeps_what_converts_and_clears_the_rest(equipment, admin):
    add(equipment, {"name": "code", "type": "text", "label": label("Code", "编码"),
                    "indexed": True})
    good = create(equipment, admin, "equipment", name="Lathe", code="12")
    bad = create(equipment, admin, "equipment", name="Drill", code="twelve")
    edit = lambda d: edits.update_field(d, "equipment", "code", {"type": "integer"})  # noqa: E731
    options = PlanOptions({"equipment.code": Conversion("convert")})
    previewed = run(equipment, edit, options=options, preview=True)
    [convert] = previewed.plan.changes[:1]
    assert (convert.lost, convert.sample) == (1, [bad["id"]])
    run(equipment, edit, options=options)
    with Session(equipment) as session:
        registry = registry_of(equipment)
        assert records.get(session, registry, "equipment", good["id"], actor=admin)["code"] == 12
        assert records.get(session, registry, "equipment", bad["id"], actor=admin)["code"] is None
    indexed = {i["name"] for i in sa.inspect(equipment).get_indexes("o_equipment")
               if i["column_names"][0] == "code"}
    assert indexed


# -- archive, restore, purge ----------------------------------------------------------------
def test_an_archived_field_keeps_its_data_and_comes_back_on_restore(equipment, admin):
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地")})
    row = create(equipment, admin, "equipment", name="Lathe", site="Plant 1")
    run(equipment, lambda d: edits.archive_field(d, "equipment", "site"))
    assert "site" not in registry_of(equipment).objects["equipment"].queryable
    run(equipment, lambda d: edits.restore_field(d, "equipment", "site"))
    with Session(equipment) as session:
        got = records.get(session, registry_of(equipment), "equipment", row["id"], actor=admin)
    assert got["site"] == "Plant 1"


def test_purge_drops_an_archived_fields_column(equipment, admin):
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地"),
                    "indexed": True})
    run(equipment, lambda d: edits.archive_field(d, "equipment", "site"))
    run(equipment, lambda d: edits.purge_field(d, "equipment", "site"),
        options=PlanOptions(purge=frozenset({"equipment.site"})))
    assert "site" not in columns(equipment, "o_equipment")


def test_a_field_never_leaves_without_an_explicit_purge(equipment):
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地")})
    run(equipment, lambda d: edits.archive_field(d, "equipment", "site"))
    with pytest.raises(SchemaChangeRefused, match="purge"):
        run(equipment, lambda d: edits.purge_field(d, "equipment", "site"))
    assert "site" in columns(equipment, "o_equipment")


# -- rollback -------------------------------------------------------------------------------
def test_rolling_back_a_field_addition_archives_the_field_and_keeps_its_data(equipment, admin):
    before = customise.history(equipment, limit=1)[0].version
    add(equipment, {"name": "site", "type": "text", "label": label("Site", "场地")})
    row = create(equipment, admin, "equipment", name="Lathe", site="Plant 1")
    customise.rollback(equipment, "admin", before)
    field = registry_of(equipment).objects["equipment"].all_fields["site"]
    assert field.archived
    with equipment.connect() as conn:
        kept = conn.execute(sa.text("SELECT site FROM o_equipment WHERE id = :id"),
                            {"id": row["id"]}).scalar()
    assert kept == "Plant 1"


def test_rolling_back_a_relabel_restores_the_label(engine):
    before = customise.history(engine, limit=1)[0].version
    run(engine, lambda d: edits.update_field(d, "customer", "name",
                                             {"label": label("Company", "公司")}))
    customise.rollback(engine, "admin", before)
    assert registry_of(engine).objects["customer"].all_fields["name"].label.en != "Company"


# -- picklists ------------------------------------------------------------------------------
def test_a_deactivated_option_stays_on_the_records_that_hold_it(engine, admin):
    row = create(engine, admin, "customer", name="ACME", industry="retail")
    run(engine, lambda d: edits.update_option(edits.options_of(d, picklist="industry"),
                                              "retail", {"active": False,
                                                         "label": label("Shops", "零售店")}))
    industry = registry_of(engine).objects["customer"].all_fields["industry"]
    assert not industry.option("retail").active
    assert industry.option("retail").label.en == "Shops"
    with Session(engine) as session:
        got = records.get(session, registry_of(engine), "customer", row["id"], actor=admin)
    assert got["industry"] == "retail"


def test_options_reorder(engine):
    values = [o.value for o in registry_of(engine).picklists["source"].options]
    run(engine, lambda d: edits.order_options(edits.options_of(d, picklist="source"),
                                              list(reversed(values))))
    assert [o.value for o in registry_of(engine).picklists["source"].options] == \
        list(reversed(values))


def test_the_overlay_holds_only_the_local_change(engine):
    run(engine, lambda d: edits.update_field(d, "customer", "name",
                                             {"label": label("Company", "公司")}))
    with engine.connect() as conn:
        overlay = conn.execute(sa.text(
            "SELECT content FROM meta_document WHERE layer = 'overlay' AND doc_key = 'customer'"
        )).scalar()
    overlay = overlay if isinstance(overlay, dict) else __import__("json").loads(overlay)
    assert overlay == {"fields": [{"name": "name", "label": label("Company", "公司")}]}


def test_a_deactivated_option_is_not_chosen_anew(engine, admin):
    run(engine, lambda d: edits.update_option(edits.options_of(d, picklist="industry"),
                                              "retail", {"active": False}))
    with pytest.raises(ValidationFailed) as refused:
        create(engine, admin, "customer", name="ACME", industry="retail")
    assert "industry" in refused.value.fields


def test_a_fill_value_that_does_not_fit_the_field_is_a_refusal(equipment, admin):
    add(equipment, {"name": "weight", "type": "integer", "label": label("Weight", "重量")})
    create(equipment, admin, "equipment", name="Lathe")
    options = PlanOptions({"equipment.weight": Conversion("fill", "heavy")})
    with pytest.raises(SchemaChangeRefused, match="does not fit"):
        run(equipment, lambda d: edits.update_field(d, "equipment", "weight",
                                                    {"required": True}), options=options)


def test_reordering_fields_reorders_them_within_their_form_sections(engine):
    run(engine, lambda d: edits.order_fields(d, "customer", ["deal_status", "code"]))
    first = registry_of(engine).objects["customer"].form[0].fields
    assert first[:2] == ("deal_status", "code")
