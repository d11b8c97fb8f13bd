"""``automations:`` as ``metacrm validate`` judges them: every problem names its file and
path, including automations that would trigger each other in a loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from metacrm.cli import main
from metacrm.metadata.templates import load_paths

from conftest import SAMPLE, SAMPLE_FLOWS


class Template:
    """Writable copies of the sample objects and flows."""

    def __init__(self, root: Path):
        self.objects, self.flows = root / "objects", root / "flows"
        shutil.copytree(SAMPLE, self.objects)
        shutil.copytree(SAMPLE_FLOWS, self.flows)

    def automate(self, object_name: str, *automations: dict) -> Path:
        path = self.objects / f"{object_name}.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["automations"] = [*raw.get("automations", []), *automations]
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        return path

    def problems(self) -> list[str]:
        result = CliRunner().invoke(main, ["validate", str(self.objects), str(self.flows)])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1, lines
        return lines


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return Template(tmp_path)


def automation(name: str, trigger: dict, *actions: dict, **extra) -> dict:
    return {"name": name, "label": {"en": name, "zh": name}, "trigger": trigger,
            "actions": list(actions), **extra}


def set_(fields: dict, lookup: str | None = None) -> dict:
    return {"set": {"fields": fields, **({"lookup": lookup} if lookup else {})}}


def notify(*to: str, en: str = "Hello", zh: str = "你好") -> dict:
    return {"notify": {"to": list(to), "message": {"en": en, "zh": zh}}}


UPDATED = {"event": "updated"}


def test_the_sample_automation_passes_with_and_without_its_flows():
    assert load_paths([SAMPLE, SAMPLE_FLOWS]).of_kind("object")
    assert load_paths([SAMPLE]).of_kind("object")


def test_setting_a_formula_field_is_refused(template):
    path = template.automate("quote", automation("taxed", UPDATED,
                                                 set_({"total_with_tax": 1})))
    assert f"{path}: automations[0].actions[0].set.fields.total_with_tax: 'total_with_tax' " \
           "is computed by the engine (formula, roll-up or auto-number)" in template.problems()


def test_setting_the_stage_field_is_refused(template):
    path = template.automate("quote", automation("win", UPDATED,
                                                 set_({"stage": "won"}, "opportunity")))
    assert f"{path}: automations[0].actions[0].set.fields.stage: 'stage' changes only by " \
           "moving the record along its stage path" in template.problems()


def test_setting_a_field_an_approval_flow_sets_is_refused(template):
    path = template.automate("quote", automation("approve", UPDATED,
                                                 set_({"approval_status": "approved"},
                                                      "opportunity")))
    assert f"{path}: automations[0].actions[0].set.fields.approval_status: 'approval_status' " \
           "is set by an approval flow" in template.problems()


@pytest.mark.parametrize(("object_name", "item", "where", "message"), [
    ("opportunity", automation("a", {"event": "field_changed", "fields": ["budget"]},
                               notify("owner")),
     "trigger.fields[0]", "'budget' is not a field of opportunity"),
    ("opportunity", automation("a", {"event": "field_changed"}, notify("owner")),
     "trigger", "a field_changed trigger needs 'fields'"),
    ("opportunity", automation("a", {"event": "created", "stages": ["won"]}, notify("owner")),
     "trigger.stages", "a created trigger takes no 'stages'"),
    ("opportunity", automation("a", {"event": "stage_entered", "stages": ["signed"]},
                               notify("owner")),
     "trigger.stages[0]", "'signed' is not a stage of a stage process of opportunity"),
    ("opportunity", automation("a", {"event": "approval_approved", "flows": ["tender"]},
                               notify("owner")),
     "trigger.flows[0]", "'tender' is not an approval flow of opportunity"),
    ("opportunity", automation("a", UPDATED, set_({"level": "A"}, "contact_person")),
     "actions[0].set.lookup", "'contact_person' is not a lookup field of opportunity"),
    ("opportunity", automation("a", UPDATED, set_({"level": "A"}, "name")),
     "actions[0].set.lookup", "'name' is not a lookup field of opportunity"),
    ("opportunity", automation("a", UPDATED, set_({"rank": "A"}, "customer")),
     "actions[0].set.fields.rank", "'rank' is not a field of customer"),
    ("opportunity", automation("a", UPDATED, set_({"level": "Z"}, "customer")),
     "actions[0].set.fields.level", "'Z' is not one of the options (A, B, C)"),
    ("opportunity", automation("a", UPDATED, set_({"amount": "=name"})),
     "actions[0].set.fields.amount",
     "the expression gives a text, but a number is needed"),
    ("opportunity", automation("a", UPDATED, notify("owner"), condition="amount + 1"),
     "condition", "the expression gives a number, but a boolean is needed"),
    ("opportunity", automation("a", UPDATED, notify("boss")),
     "actions[0].notify.to[0]", "'boss' is not a user field of opportunity, a role "
     "(role:<name>) or a lookup's user field (customer.owner)"),
    ("opportunity", automation("a", UPDATED, notify("role:boss")),
     "actions[0].notify.to[0]", "role 'boss' does not exist"),
    ("opportunity", automation("a", UPDATED, notify("owner", en="Won {budget}")),
     "actions[0].notify.message.en", "'{budget}' is not a field of opportunity"),
])
def test_a_bad_automation_is_refused_naming_file_and_path(template, object_name, item, where,
                                                          message):
    path = template.automate(object_name, item)
    index = 1 if object_name == "opportunity" else 0  # after the sample's own
    problems = template.problems()
    assert any(line.startswith(f"{path}: automations[{index}].{where}: {message}")
               for line in problems), problems


def test_automations_named_twice_are_refused(template):
    path = template.automate("opportunity", automation("won_closes_customer", UPDATED,
                                                       notify("owner")))
    assert f"{path}: automations[1].name: automation 'won_closes_customer' is defined twice" \
        in template.problems()


def test_a_loop_of_two_automations_is_refused_naming_the_cycle(template):
    # opportunity.a leads into the loop without being on it: b reacts to remark by
    # setting level, and c (any change) sets remark.
    template.automate("opportunity", automation(
        "a", {"event": "field_changed", "fields": ["amount"]},
        set_({"remark": "=name"}, "customer")))
    path = template.automate(
        "customer",
        automation("b", {"event": "field_changed", "fields": ["remark"]},
                   set_({"level": "A"})),
        automation("c", UPDATED, set_({"remark": "changed"})))
    problems = template.problems()
    assert any(line.startswith(f"{path}: automations[0].trigger: automations trigger each "
                               "other in a loop: customer.b → customer.c → customer.b")
               for line in problems), problems


def test_an_automation_that_triggers_itself_is_refused(template):
    path = template.automate("customer", automation(
        "bump", UPDATED, set_({"employees": "=employees + 1"})))
    assert f"{path}: automations[0].trigger: automations trigger each other in a loop: " \
           "customer.bump → customer.bump; narrow a trigger to the fields it needs " \
           "(field_changed)" in template.problems()


def test_a_field_changed_trigger_on_other_fields_makes_no_loop(template):
    template.automate("customer", automation(
        "mark", {"event": "field_changed", "fields": ["level"]}, set_({"remark": "key"})))
    assert load_paths([template.objects, template.flows])


def test_a_loop_through_a_formula_is_refused(template):
    # quote.tax_rate feeds the formula total_with_tax; an automation watching it that sets
    # tax_rate comes back to itself.
    path = template.automate("quote", automation(
        "rate", {"event": "field_changed", "fields": ["total_with_tax"]},
        set_({"tax_rate": "=tax_rate + 1"})))
    assert any(line.startswith(f"{path}: automations[0].trigger: automations trigger each "
                               "other in a loop: quote.rate → quote.rate")
               for line in template.problems())
