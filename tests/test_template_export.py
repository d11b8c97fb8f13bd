"""Exporting the customisations as a template: valid, installable, and a fixed point."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from metacrm.engine import customise
from metacrm.engine.schema import metastore
from metacrm.engine.schema.template_export import ExportRefused, export_template
from metacrm.metadata import edits
from metacrm.metadata.templates import load_paths

from conftest import export_install_export


def customised(engine) -> None:
    """An admin's afternoon: a new object, a relabel, a reorder, an option, a type."""
    steps = [
        lambda d: edits.create_object(d, {
            "object": "equipment", "label": {"en": "Equipment", "zh": "设备"},
            "features": ["owner"], "title": {"name": "name",
                                             "label": {"en": "Name", "zh": "名称"}}}),
        lambda d: edits.add_field(d, "equipment", {
            "name": "customer", "type": "lookup", "target": "customer",
            "label": {"en": "Customer", "zh": "客户"}}),
        lambda d: edits.update_field(d, "customer", "name",
                                     {"label": {"en": "Company", "zh": "公司名称"}}),
        lambda d: edits.order_fields(d, "contact", ["name"]),
        lambda d: edits.add_option(edits.options_of(d, picklist="industry"), {
            "value": "energy", "label": {"en": "Energy", "zh": "能源"}}),
        lambda d: edits.put_business_type(d, "equipment", {
            "name": "rented", "label": {"en": "Rented", "zh": "租赁"}}),
    ]
    for step in steps:
        customise.change(engine, "admin", "customise", step)


def objects_of(engine) -> dict:
    with Session(engine) as session:
        return metastore.load_registry(session).objects


def test_an_export_passes_validate(engine, tmp_path):
    customised(engine)
    export_template(engine, tmp_path / "out")
    templates = load_paths([tmp_path / "out"])
    assert {d.name for d in templates.of_kind("object")} >= {"equipment", "customer"}


def test_export_install_export_gives_the_same_files(engine, backend, tmp_path):
    customised(engine)
    export_install_export(engine, backend, tmp_path, objects_of)


def test_the_export_reads_naturally(engine, tmp_path):
    customised(engine)
    export_template(engine, tmp_path)
    text = (tmp_path / "equipment.yaml").read_text(encoding="utf-8")
    assert "label: {en: Equipment, zh: 设备}" in text


def test_an_export_refuses_a_folder_holding_other_definitions(engine, tmp_path):
    (tmp_path / "stray.yaml").write_text("object: stray\n")
    with pytest.raises(ExportRefused, match="stray.yaml"):
        export_template(engine, tmp_path)


def test_the_export_command_writes_the_folder(tmp_path, monkeypatch, database_url):
    from click.testing import CliRunner

    from metacrm.cli import main

    monkeypatch.setenv("METACRM_DATABASE_URL", database_url)
    monkeypatch.setenv("METACRM_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("METACRM_REDIS_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--template", str(Path("object_defs/sample"))]
                         ).exit_code == 0
    result = runner.invoke(main, ["template", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "customer.yaml").exists()
