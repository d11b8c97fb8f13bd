"""Exporting stage processes, approval flows and the roles they name as template files:
valid on their own, installable, and a fixed point (export → install → export)."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.access import roles
from metacrm.engine.schema import metastore
from metacrm.engine.schema.template_export import export_files, export_template
from metacrm.metadata.templates import load_paths

from conftest import SAMPLE, SAMPLE_FLOWS, export_install_export

FLOW_FILES = {"stage_process_opportunity_standard.yaml",
              "stage_process_opportunity_project.yaml",
              "approval_flow_large_opportunity.yaml", "approval_flow_tender_review.yaml",
              "roles.yaml"}


def flows_of(engine) -> tuple[dict, dict]:
    with Session(engine) as session:
        registry = metastore.load_registry(session)
        return registry.stage_processes, registry.approval_flows


def test_the_export_holds_each_process_and_flow_and_the_roles(flows_engine):
    files = export_files(flows_engine)
    assert FLOW_FILES <= set(files)
    tender = yaml.safe_load(files["approval_flow_tender_review.yaml"])
    assert tender == yaml.safe_load((SAMPLE_FLOWS / "tender_review.yaml").read_text())
    assert yaml.safe_load(files["roles.yaml"]) == {"roles": [
        {"name": "finance", "label": {"en": "Finance", "zh": "财务"}},
        {"name": "sales_manager", "label": {"en": "Sales manager", "zh": "销售经理"}}]}


def test_an_export_with_flows_passes_validate(flows_engine, tmp_path):
    export_template(flows_engine, tmp_path / "out")
    found = load_paths([tmp_path / "out"])  # no installed roles: the folder stands alone
    assert {d.name for d in found.of_kind("stage_process")} == {"opportunity_standard",
                                                                 "opportunity_project"}
    assert {d.name for d in found.of_kind("approval_flow")} == {"large_opportunity",
                                                                "tender_review"}


def test_export_install_export_with_flows_gives_the_same_files(flows_engine, backend,
                                                               tmp_path):
    first, _ = export_install_export(flows_engine, backend, tmp_path, flows_of)
    assert FLOW_FILES <= {p.name for p in first.iterdir()}


def test_a_role_created_by_hand_and_named_by_a_flow_is_exported(flows_engine, tmp_path):
    with Session(flows_engine) as session, session.begin():
        roles.create_role(session, "auditor", {"en": "Auditor", "zh": "审计"})
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "audit.yaml").write_text(yaml.safe_dump({
        "approval_flow": "audit_review", "label": {"en": "Audit", "zh": "审计审批"},
        "object": "opportunity", "trigger": "submit",
        "steps": [{"name": "audit", "label": {"en": "Audit", "zh": "审计"},
                   "approvers": {"type": "role", "role": "auditor"}}]}, allow_unicode=True))
    instance.install(flows_engine, [extra])
    export_template(flows_engine, tmp_path / "out")
    exported = yaml.safe_load((tmp_path / "out" / "roles.yaml").read_text())
    assert {"name": "auditor", "label": {"en": "Auditor", "zh": "审计"}} in exported["roles"]
    load_paths([tmp_path / "out"])


def test_an_instance_without_flows_exports_no_flow_files(engine):
    assert not FLOW_FILES & set(export_files(engine))


def test_the_export_command_writes_the_flows(tmp_path, monkeypatch, database_url):
    from click.testing import CliRunner

    from metacrm.cli import main

    monkeypatch.setenv("METACRM_DATABASE_URL", database_url)
    monkeypatch.setenv("METACRM_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("METACRM_REDIS_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["init", "--template", str(SAMPLE),
                                  "--template", str(SAMPLE_FLOWS)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["template", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert FLOW_FILES <= {p.name for p in Path(tmp_path / "out").iterdir()}
    assert runner.invoke(main, ["validate", str(tmp_path / "out")]).exit_code == 0
