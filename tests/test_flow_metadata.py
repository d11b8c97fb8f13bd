"""Stage processes and approval flows as metadata: the shipped files, `metacrm validate`
refusing bad flows with file and path, and flows installed alongside the objects."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy.orm import Session

from metacrm.cli import main
from metacrm.engine import customise
from metacrm.engine.access import roles
from metacrm.engine.schema import metastore
from metacrm.metadata import edits
from metacrm.metadata.loader import load_document
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths

from conftest import SAMPLE, SAMPLE_FLOWS

SHIPPED = sorted([*SAMPLE.glob("*.yaml"), *SAMPLE_FLOWS.glob("*.yaml")])


@pytest.fixture
def engine(flows_engine):
    return flows_engine


@dataclass
class Folders:
    """Writable copies of the sample objects and flows."""

    objects: Path
    flows: Path

    def edit(self, name: str, change: Callable[[dict], None]) -> Path:
        path = self.flows / f"{name}.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(raw)
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        return path

    def add(self, name: str, raw: dict) -> Path:
        path = self.flows / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        return path

    def validate(self) -> tuple[int, list[str]]:
        result = CliRunner().invoke(main, ["validate", str(self.objects), str(self.flows)])
        return result.exit_code, result.output.strip().splitlines()


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    found = Folders(tmp_path / "objects", tmp_path / "flows")
    shutil.copytree(SAMPLE, found.objects)
    shutil.copytree(SAMPLE_FLOWS, found.flows)
    return found


def refused(folders: Folders, path: Path, where: str, message: str) -> None:
    """``metacrm validate`` exits 1 and lists ``file: path: message``."""
    code, lines = folders.validate()
    assert code == 1, lines
    assert f"{path}: {where}: {message}" in lines, lines
    assert lines[-1].endswith("problem(s)")


def stage_of(raw: dict, name: str) -> dict:
    return next(s for s in raw["stages"] if s["name"] == name)


# -- the shipped files --------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_file_meets_its_schema(path: Path):
    doc, problems = load_document(path, path.name)
    assert problems == [] and doc is not None


def test_the_sample_objects_and_flows_pass_every_cross_check():
    templates = load_paths([SAMPLE, SAMPLE_FLOWS])
    kinds = {d.kind for d in templates.documents}
    assert {"stage_process", "approval_flow", "roles"} <= kinds


def test_metacrm_validate_accepts_the_sample_flows(folders):
    code, lines = folders.validate()
    assert code == 0 and lines == ["ok: 16 document(s)"]


def test_flows_without_their_objects_are_refused_naming_the_object():
    with pytest.raises(DefinitionError) as caught:
        load_paths([SAMPLE_FLOWS])
    assert {p.path for p in caught.value.problems} == {"object"}
    assert all("'opportunity' is not a known object" in p.message for p in caught.value.problems)


# -- approval flows ---------------------------------------------------------------------------
def test_an_unknown_role_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw["steps"][0].update(
        approvers={"type": "role", "role": "boss"}))
    refused(folders, path, "steps[0].approvers.role", "role 'boss' does not exist")


def test_a_role_declared_by_the_template_is_known(folders):
    def finance_director(raw):
        raw["steps"][1]["approvers"]["role"] = "finance_director"

    folders.edit("large_opportunity", finance_director)
    folders.edit("roles", lambda raw: raw["roles"].append(
        {"name": "finance_director", "label": {"en": "Finance director", "zh": "财务总监"}}))
    assert folders.validate()[0] == 0


def test_an_unknown_field_in_a_condition_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        condition="budget >= 500000"))
    refused(folders, path, "condition", "unknown field 'budget' (at column 1)")


def test_a_condition_that_is_not_true_or_false_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(condition="amount * 2"))
    refused(folders, path, "condition", "the expression gives a number, but a boolean is needed")


def test_an_update_of_an_unknown_field_on_approve_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_approve={"status": "active"}))
    refused(folders, path, "on_approve.status", "'status' is not a field of opportunity")


def test_an_update_with_a_value_of_the_wrong_type_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_reject={"approval_status": "maybe"}))
    refused(folders, path, "on_reject.approval_status",
            "'maybe' is not one of the options (pending, approved, rejected, withdrawn)")


def test_an_update_of_an_unknown_field_on_submit_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_submit={"status": "pending"}))
    refused(folders, path, "on_submit.status", "'status' is not a field of opportunity")


def test_an_update_on_withdraw_with_a_value_not_among_the_options_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_withdraw={"approval_status": "gone"}))
    refused(folders, path, "on_withdraw.approval_status",
            "'gone' is not one of the options (pending, approved, rejected, withdrawn)")


def test_a_submit_update_may_not_set_the_stage(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_submit={"stage": "needs"}))
    refused(folders, path, "on_submit.stage",
            "'stage' changes only by moving the record along its stage path")


def test_a_number_update_with_text_is_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_approve={"amount": "a lot"}))
    refused(folders, path, "on_approve.amount", "must be a number")


def test_a_flow_with_a_schema_error_in_one_step_is_still_cross_checked(folders):
    def broken(raw):
        raw["steps"][0].update(mode="some")  # the schema refuses this step
        raw["steps"][1]["approvers"]["role"] = "boss"
        raw.update(condition="budget >= 500000", on_approve={"status": "active"})

    path = folders.edit("large_opportunity", broken)
    code, lines = folders.validate()
    assert code == 1
    assert {f"{path}: steps[0].mode: 'some' is not one of ['all', 'any']",
            f"{path}: steps[1].approvers.role: role 'boss' does not exist",
            f"{path}: condition: unknown field 'budget' (at column 1)",
            f"{path}: on_approve.status: 'status' is not a field of opportunity"} <= set(lines)
    assert lines[-1] == "4 problem(s)", lines


def test_a_stage_process_with_a_schema_error_in_one_stage_is_still_cross_checked(folders):
    def broken(raw):
        stage_of(raw, "needs")["win_rate"] = "high"  # the schema refuses this stage
        stage_of(raw, "proposal")["required"] = ["budget"]
        raw.update(win_rate_field="chance")

    path = folders.edit("opportunity_standard", broken)
    code, lines = folders.validate()
    assert code == 1
    assert set(lines[:-1]) == {
        f"{path}: stages[1].win_rate: 'high' is not of type 'number'",
        f"{path}: stages[2].required[0]: 'budget' is not a field of opportunity",
        f"{path}: win_rate_field: 'chance' is not a number field of opportunity"}, lines


def test_a_flow_whose_trigger_the_schema_refused_is_not_judged_by_a_trigger(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        trigger="sometimes", trigger_fields=["amount"]))
    code, lines = folders.validate()
    assert code == 1
    assert len(lines) == 2 and lines[0].startswith(f"{path}: trigger: 'sometimes' is not one"), \
        lines


@pytest.mark.parametrize("field", ["stage", "win_rate"])
def test_an_outcome_may_not_set_a_field_only_stage_moves_change(folders, field):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        on_approve={field: "won" if field == "stage" else 100}))
    refused(folders, path, f"on_approve.{field}",
            f"'{field}' changes only by moving the record along its stage path")


def test_submitter_chooses_only_in_a_flow_the_user_submits(folders):
    path = folders.edit("tender_review", lambda raw: raw["steps"][0].update(
        approvers={"type": "submitter_chooses"}))
    refused(folders, path, "steps[0].approvers.type",
            "only a flow the user submits lets the submitter choose approvers")


def test_a_flow_without_steps_is_refused_by_the_schema(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.pop("steps"))
    refused(folders, path, "(root)", "'steps' is a required property")


def test_an_unknown_mode_is_refused_by_the_schema(folders):
    path = folders.edit("large_opportunity", lambda raw: raw["steps"][1].update(mode="some"))
    refused(folders, path, "steps[1].mode", "'some' is not one of ['all', 'any']")


def test_a_field_change_flow_needs_its_trigger_fields(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(trigger="field_change"))
    refused(folders, path, "(root)", "'trigger_fields' is a required property")


def test_trigger_fields_must_be_fields_of_the_object(folders):
    path = folders.edit("large_opportunity", lambda raw: raw.update(
        trigger="field_change", trigger_fields=["budget"]))
    refused(folders, path, "trigger_fields[0]", "'budget' is not a field of opportunity")


def test_a_superior_step_takes_no_role(folders):
    path = folders.edit("large_opportunity", lambda raw: raw["steps"][0]["approvers"].update(
        role="finance"))
    refused(folders, path, "steps[0].approvers.role", "superior approvers take no 'role'")


def test_two_steps_of_one_name_are_refused(folders):
    path = folders.edit("large_opportunity", lambda raw: raw["steps"][1].update(
        name="manager"))
    refused(folders, path, "steps[1].name", "step 'manager' is listed twice")


# -- stage processes ------------------------------------------------------------------------
def test_a_stage_field_that_is_not_a_select_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(field="name"))
    refused(folders, path, "field", "'name' is not a select field of opportunity: a stage "
            "process needs the field that holds the stage")


def test_a_stage_field_that_does_not_exist_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(field="phase"))
    refused(folders, path, "field", "'phase' is not a select field of opportunity: a stage "
            "process needs the field that holds the stage")


def test_a_stage_that_is_not_an_option_of_the_stage_field_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw["stages"][1].update(
        name="discovery"))
    refused(folders, path, "stages[1].name", "'discovery' is not an option of opportunity.stage")


def test_a_stage_listed_twice_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw["stages"][1].update(
        name="qualify"))
    refused(folders, path, "stages[1].name", "stage 'qualify' is listed twice")


def test_two_won_stages_are_refused(folders):
    def two_won(raw):
        stage_of(raw, "lost").update(type="won")
        stage_of(raw, "lost").pop("reason_field")

    path = folders.edit("opportunity_standard", two_won)
    refused(folders, path, "stages", "a process has at most one won stage")


def test_a_lost_stage_needs_a_reason_field(folders):
    path = folders.edit("opportunity_standard", lambda raw: stage_of(raw, "lost").pop(
        "reason_field"))
    refused(folders, path, "stages[5]", "a lost stage needs 'reason_field': the lost reason")


def test_a_reason_field_that_does_not_exist_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: stage_of(raw, "lost").update(
        reason_field="why"))
    refused(folders, path, "stages[5].reason_field", "'why' is not a field of opportunity")


def test_an_unknown_stage_approval_flow_is_refused(folders):
    path = folders.edit("opportunity_project", lambda raw: stage_of(raw, "tender").update(
        approval="board_review"))
    refused(folders, path, "stages[3].approval", "approval flow 'board_review' does not exist")


def test_a_stage_approval_flow_must_be_triggered_by_the_stage(folders):
    path = folders.edit("opportunity_project", lambda raw: stage_of(raw, "tender").update(
        approval="large_opportunity"))
    refused(folders, path, "stages[3].approval",
            "approval flow 'large_opportunity' needs 'trigger: stage'")


def test_required_fields_that_do_not_exist_are_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: stage_of(raw, "proposal").update(
        required=["amount", "budget"]))
    refused(folders, path, "stages[2].required[1]", "'budget' is not a field of opportunity")


def test_a_win_rate_field_that_is_not_a_number_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(win_rate_field="name"))
    refused(folders, path, "win_rate_field", "'name' is not a number field of opportunity")


def test_start_stages_of_the_process_are_accepted(folders):
    folders.edit("opportunity_standard", lambda raw: raw.update(start_stages=["qualify", "needs"]))
    assert folders.validate()[0] == 0


def test_a_start_stage_that_is_not_a_stage_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(start_stages=["tender"]))
    refused(folders, path, "start_stages[0]", "'tender' is not a stage of this process")


def test_a_closed_start_stage_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(
        start_stages=["qualify", "won"]))
    refused(folders, path, "start_stages[1]", "a new record cannot start in won stage 'won'")


def test_win_rate_and_shares_above_100_are_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: stage_of(raw, "negotiation").update(
        key_events=[{"name": "signed", "label": {"en": "Signed", "zh": "签约"}, "share": 30}]))
    refused(folders, path, "stages[3].key_events",
            "the win rate and the key events' shares add up to more than 100")


def test_two_processes_claiming_one_business_type_are_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(
        business_types=["standard", "project"]))
    refused(folders, path, "business_types",
            "records of opportunity type project already follow 'opportunity_project'")


def test_two_default_processes_of_one_object_are_refused(folders):
    folders.edit("opportunity_project", lambda raw: raw.pop("business_types"))
    path = folders.edit("opportunity_standard", lambda raw: raw.pop("business_types"))
    refused(folders, path, "stage_process",
            "records of opportunity (default) already follow 'opportunity_project'")


def test_an_unknown_business_type_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(
        business_types=["retail"]))
    refused(folders, path, "business_types[0]", "'retail' is not a business type of opportunity")


def test_a_process_for_an_unknown_object_is_refused(folders):
    path = folders.edit("opportunity_standard", lambda raw: raw.update(object="deal"))
    refused(folders, path, "object", "'deal' is not a known object")


def test_a_bad_stage_type_is_refused_by_the_schema(folders):
    path = folders.edit("opportunity_standard", lambda raw: stage_of(raw, "won").update(
        type="closed"))
    refused(folders, path, "stages[4].type", "'closed' is not one of ['open', 'won', 'lost']")


def test_every_problem_is_listed_at_once(folders):
    folders.edit("opportunity_standard", lambda raw: raw.update(field="name"))
    folders.edit("large_opportunity", lambda raw: raw.update(condition="budget > 1"))
    code, lines = folders.validate()
    assert code == 1
    assert lines[-1] == "2 problem(s)"


# -- installed ----------------------------------------------------------------------------
def test_installing_creates_the_roles_the_template_declares(engine):
    with Session(engine) as session:
        assert roles.role_id(session, "finance") is not None
        assert roles.role_id(session, "sales_manager") is not None


def test_the_registry_exposes_the_installed_flows(registry):
    assert set(registry.stage_processes) == {"opportunity_standard", "opportunity_project"}
    assert set(registry.approval_flows) == {"large_opportunity", "tender_review"}
    assert [f.name for f in registry.flows_of("opportunity", "stage")] == ["tender_review"]
    assert registry.process_for("opportunity", "project", set()).name == "opportunity_project"
    assert registry.process_for("opportunity", "standard", set()).name == \
        "opportunity_standard"
    assert registry.process_for("customer", None, set()) is None


def test_installed_flows_survive_an_admin_change_of_the_metadata(engine):
    customise.change(engine, "admin", "relabel", lambda d: edits.update_field(
        d, "opportunity", "remark", {"label": {"en": "Notes", "zh": "说明"}}))
    with Session(engine) as session:
        registry = metastore.load_registry(session)
    assert registry.objects["opportunity"].all_fields["remark"].label.en == "Notes"
    assert set(registry.stage_processes) == {"opportunity_standard", "opportunity_project"}
    shipped = yaml.safe_load((SAMPLE_FLOWS / "large_opportunity.yaml").read_text("utf-8"))
    assert registry.approval_flows["large_opportunity"].condition == shipped["condition"]
    assert "large_opportunity" in registry.flow_conditions


def test_an_admin_change_that_breaks_a_flow_is_refused(engine):
    with pytest.raises(DefinitionError) as caught:
        customise.change(engine, "admin", "archive", lambda d: edits.archive_field(
            d, "opportunity", "lost_reason"))
    assert any(p.path.endswith("reason_field") for p in caught.value.problems)
    with Session(engine) as session:
        registry = metastore.load_registry(session)
    assert not registry.objects["opportunity"].all_fields["lost_reason"].archived
