"""Schema sync: additive changes apply online; risky ones are refused with the rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import SchemaChangeRefused
from metacrm.engine.schema import changes, metastore
from metacrm.engine.schema.schema_sync import AddColumn, CreateIndex, CreateTable
from metacrm.engine.writing import records


def edit(template: Path, name: str, old: str, new: str) -> None:
    path = template / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_field(template: Path, line: str, object_file: str = "customer.yaml") -> None:
    edit(template, object_file, "fields:\n", f"fields:\n  - {line}\n")


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_first_install_creates_one_table_per_object(bare_engine):
    planned = instance.install(bare_engine, ["object_defs/sample"])
    assert planned == 1
    tables = set(sa.inspect(bare_engine).get_table_names())
    assert {"o_customer", "o_contact", "o_opportunity"} <= tables
    assert {"id", "owner", "version", "deleted", "name", "level"} <= columns(bare_engine,
                                                                            "o_customer")


def test_plan_is_empty_after_apply(engine):
    assert changes.plan_schema(engine).describe() == []


def test_plan_lists_typed_changes_before_anything_runs(bare_engine):
    with Session(bare_engine) as session, session.begin():
        from metacrm.metadata.templates import load_paths
        metastore.install_template(session, load_paths(["object_defs/sample"]), "test")
    planned = changes.plan_schema(bare_engine)
    objects = ("contact", "contract", "customer", "opportunity", "payment", "product", "quote",
               "quote_line")
    assert [type(c) for c in planned.changes] == [CreateTable] * len(objects)
    assert planned.describe() == [f"create table for object {name}" for name in objects]
    assert "o_customer" not in sa.inspect(bare_engine).get_table_names()


def test_adding_a_field_adds_a_column_and_keeps_data(engine, make_record, template_copy):
    row = make_record("customer", name="Kept")
    add_field(template_copy, "{name: wechat, type: text, label: {en: WeChat, zh: 微信}, indexed: true}")
    with Session(engine) as session, session.begin():
        from metacrm.metadata.templates import load_paths
        metastore.install_template(session, load_paths([template_copy]), "test")
    planned = changes.plan_schema(engine)
    assert planned.describe() == ["add column customer.wechat (text)",
                                  "create index ix_o_customer_wechat on customer"]
    assert [type(c) for c in planned.changes] == [AddColumn, CreateIndex]
    changes.apply_schema(engine)
    assert "wechat" in columns(engine, "o_customer")
    with Session(engine) as session:
        registry = metastore.load_registry(session)
        assert records.get(session, registry, "customer", row["id"], actor=SYSTEM)["name"] == "Kept"


def test_required_over_empty_values_is_refused_with_count_and_sample(engine, make_record,
                                                                     template_copy):
    ids = [make_record("customer", name=f"C{i}")["id"] for i in range(3)]
    make_record("customer", name="Has phone", phone="010-1234567")
    edit(template_copy, "customer.yaml", "{name: phone, type: phone,",
         "{name: phone, type: phone, required: true,")
    with pytest.raises(SchemaChangeRefused) as caught:
        instance.install(engine, [template_copy])
    [refused] = caught.value.changes
    assert (refused.field_name, refused.count, refused.sample) == ("phone", 3, ids)
    assert "required, but some records have no value" in refused.describe()


def test_a_refused_change_leaves_metadata_and_schema_as_they_were(engine, make_record,
                                                                  template_copy):
    make_record("customer", name="No phone")
    edit(template_copy, "customer.yaml", "{name: phone, type: phone,",
         "{name: phone, type: phone, required: true,")
    add_field(template_copy, "{name: wechat, type: text, label: {en: WeChat, zh: 微信}}")
    with Session(engine) as session:
        before = metastore.read_version(session)
    with pytest.raises(SchemaChangeRefused):
        instance.install(engine, [template_copy])
    with Session(engine) as session:
        assert metastore.read_version(session) == before
        assert not metastore.load_registry(session).objects["customer"].all_fields[
            "phone"].required
    assert "wechat" not in columns(engine, "o_customer")


def test_unique_over_duplicates_is_refused(engine, make_record, template_copy):
    a = make_record("customer", name="A", phone="123456")
    b = make_record("customer", name="B", phone="123456")
    make_record("customer", name="C", phone="999999")
    edit(template_copy, "customer.yaml", "{name: phone, type: phone,",
         "{name: phone, type: phone, unique: true,")
    with pytest.raises(SchemaChangeRefused) as caught:
        instance.install(engine, [template_copy])
    [refused] = caught.value.changes
    assert (refused.count, refused.sample) == (2, [a["id"], b["id"]])


def test_unique_over_distinct_values_adds_a_unique_index(engine, make_record, template_copy):
    make_record("customer", name="A", phone="123456")
    edit(template_copy, "customer.yaml", "{name: phone, type: phone,",
         "{name: phone, type: phone, unique: true,")
    instance.install(engine, [template_copy])
    indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("o_customer")}
    assert indexes["uq_o_customer_phone"]["unique"]


def test_type_change_over_data_is_refused(engine, make_record, template_copy):
    row = make_record("customer", name="A", employees=12)
    edit(template_copy, "customer.yaml", "{name: employees, type: integer,",
         "{name: employees, type: date,")
    edit(template_copy, "customer.yaml", "zh: 员工人数}, min: 0,", "zh: 员工人数},")  # a date has none
    with pytest.raises(SchemaChangeRefused) as caught:
        instance.install(engine, [template_copy])
    [refused] = caught.value.changes
    assert (refused.count, refused.sample) == (1, [row["id"]])
    assert "type change integer -> date needs an explicit conversion" in refused.reason


def test_type_change_of_an_empty_column_is_applied(engine, make_record, template_copy):
    make_record("customer", name="A")
    edit(template_copy, "customer.yaml", "{name: employees, type: integer,",
         "{name: employees, type: date,")
    edit(template_copy, "customer.yaml", "zh: 员工人数}, min: 0,", "zh: 员工人数},")  # a date has none
    instance.install(engine, [template_copy])
    with Session(engine) as session:
        registry = metastore.load_registry(session)
        row = records.create(session, registry, "customer", {"name": "B",
                                                             "employees": "2026-01-01"},
                             actor=metastore_system())
        session.commit()
    assert str(row["employees"]) == "2026-01-01"


def metastore_system():
    from metacrm.engine.actor import SYSTEM
    return SYSTEM


def test_widening_to_text_needs_no_check(engine, make_record, template_copy):
    make_record("customer", name="A", email="a@example.com")
    edit(template_copy, "customer.yaml", "{name: email, type: email,",
         "{name: email, type: text,")
    planned_version = instance.install(engine, [template_copy])
    assert planned_version == 2


def test_shorter_max_length_over_longer_values_is_refused(engine, make_record, template_copy):
    make_record("customer", name="A" * 150)
    edit(template_copy, "customer.yaml", "required: true, unique: true, max_length: 200",
         "required: true, unique: true, max_length: 100")
    with pytest.raises(SchemaChangeRefused, match="longer than 100 characters"):
        instance.install(engine, [template_copy])


def test_removing_an_option_in_use_is_refused(engine, make_record, template_copy):
    make_record("customer", name="A", level="C")
    text = (template_copy / "customer.yaml").read_text(encoding="utf-8")
    text = re.sub(r"\n      - \{value: C,[^\n]*", "", text)
    (template_copy / "customer.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SchemaChangeRefused, match="options in use were removed: C"):
        instance.install(engine, [template_copy])


def test_a_removed_field_is_archived_and_its_data_kept(engine, make_record, template_copy):
    make_record("customer", name="A", remark="keep me")
    text = (template_copy / "customer.yaml").read_text(encoding="utf-8")
    text = text.replace("  - {name: remark, type: textarea, label: {en: Remarks, zh: 备注}}\n", "")
    text = text.replace(", locked, remark]", ", locked]").replace("next_contact_at, remark]",
                                                                  "next_contact_at]")
    (template_copy / "customer.yaml").write_text(text, encoding="utf-8")
    instance.install(engine, [template_copy])
    assert "remark" in columns(engine, "o_customer")
    with Session(engine) as session:
        customer = metastore.load_registry(session).objects["customer"]
        kept = session.execute(sa.text("select remark from o_customer")).scalar()
    assert customer.all_fields["remark"].archived and "remark" not in customer.queryable
    assert kept == "keep me"


def test_a_renamed_field_keeps_its_column_by_key(engine, make_record, template_copy):
    make_record("customer", name="A", address="Shanghai")
    edit(template_copy, "customer.yaml", "{name: address, type: text,",
         "{name: street_address, key: address, type: text,")
    for _ in range(2):  # the object's form and the key-account type's form
        edit(template_copy, "customer.yaml", "website, region, address]",
             "website, region, street_address]")
    edit(template_copy, "customer.yaml", "website, region, address,",
         "website, region, street_address,")
    instance.install(engine, [template_copy])
    assert "street_address" in columns(engine, "o_customer")
    assert "address" not in columns(engine, "o_customer")
    with Session(engine) as session:
        assert session.execute(sa.text("select street_address from o_customer")).scalar() \
            == "Shanghai"
