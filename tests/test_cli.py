"""The metacrm command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from metacrm.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("METACRM_DATABASE_URL", database_url)
    monkeypatch.setenv("METACRM_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("METACRM_REDIS_URL", raising=False)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_validate_accepts_the_sample_template(cli):
    result = cli("validate", str(ROOT / "object_defs" / "sample"))
    assert result.exit_code == 0 and result.output.startswith("ok: 11 document(s)")


def test_validate_lists_every_problem_and_fails(cli, tmp_path):
    (tmp_path / "a.yaml").write_text("object: a\nlabel: {en: A}\ntitle_field: x\nfields: []\n")
    (tmp_path / "b.yaml").write_text("object: [\n")
    result = cli("validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any("a.yaml: fields: [] should be non-empty" in line for line in lines)
    assert any("a.yaml: label: 'zh' is a required property" in line for line in lines)
    assert any("b.yaml: line" in line for line in lines)
    assert lines[-1] == "3 problem(s)"


def test_validate_reports_a_files_schema_and_cross_reference_problems_at_once(cli, tmp_path):
    (tmp_path / "thing.yaml").write_text(
        "object: thing\nlabel: {en: Thing, zh: 物品}\ntitle_field: name\nfields:\n"
        "  - {name: kind, type: strng, label: {en: K, zh: K}}\n"
        "  - {name: name, type: text, label: {en: N, zh: N}}\n"
        "  - {name: co, type: lookup, target: nowhere, label: {en: C, zh: C}}\n",
        encoding="utf-8")
    result = cli("validate", str(tmp_path))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    path = tmp_path / "thing.yaml"
    assert lines[0].startswith(f"{path}: fields[0].type: 'strng' is not one of [")
    assert lines[1:] == [f"{path}: fields[2].target: lookup target 'nowhere' is not a known "
                         "object", "2 problem(s)"]


def test_init_installs_the_template_and_prints_the_admin_password(cli, tmp_path):
    result = cli("init", "--template", str(ROOT / "object_defs" / "sample"))
    assert result.exit_code == 0, result.output
    assert "installed" in result.output and "created admin user: admin, password: " in result.output
    password = result.output.rsplit("password: ", 1)[1].strip()
    assert (tmp_path / "instance" / "initial_admin_password").read_text().strip() == password
    again = cli("init", "--template", str(ROOT / "object_defs" / "sample"))
    assert f"admin user: admin, password: {password}" in again.output


def test_demo_fills_every_object_once(cli):
    cli("init", "--template", str(ROOT / "object_defs" / "sample"))
    result = cli("demo", "--per-object", "5")
    counts = dict(item.rsplit(" ", 1) for item in
                  result.output.strip().removeprefix("demo records: ").split(", "))
    # Payments are made only against contracts in force, never beyond their amounts;
    # every quote has one to four lines.
    assert {k: v for k, v in counts.items() if k not in ("payment", "quote_line")} == {
        "customer": "5", "product": "5", "contact": "5", "opportunity": "5", "contract": "5",
        "quote": "5"}
    assert 0 < int(counts["payment"]) <= 5
    assert 5 <= int(counts["quote_line"]) <= 20
    assert "skipped" in cli("demo").output


def test_schema_plan_and_apply_report_up_to_date(cli):
    cli("template", "install", str(ROOT / "object_defs" / "sample"))
    assert cli("schema", "plan").output.strip() == "the schema is up to date"
    assert cli("schema", "apply").output.strip() == "the schema is up to date"


def test_template_install_refuses_a_broken_template(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text("object: bad\nlabel: {en: B, zh: B}\ntitle_field: n\n"
                                       "fields: [{name: n, type: strng, label: {en: N, zh: N}}]\n")
    result = cli("template", "install", str(tmp_path))
    assert result.exit_code == 1
    assert "fields[0].type: 'strng' is not one of" in result.output
    assert "nothing was installed" in result.output


def test_user_create_and_a_duplicate(cli):
    cli("init")
    assert cli("user", "create", "--username", "li", "--password", "long-enough").exit_code == 0
    again = cli("user", "create", "--username", "li", "--password", "long-enough")
    assert again.exit_code == 1 and "username: 'li' is already taken" in again.output


@pytest.mark.parametrize("command", [[], ["init"], ["upgrade"], ["run"], ["demo"], ["validate"],
                                     ["template", "install"], ["template", "export"], ["schema", "plan"],
                                     ["schema", "apply"], ["user", "create"], ["worker"],
                                     ["jobs", "list"], ["jobs", "run-due"], ["jobs", "run"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_the_console_script_is_installed():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "metacrm.cli", "--help"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "template" in result.stdout
