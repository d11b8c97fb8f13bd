"""`metacrm validate` on formulas, roll-ups, defaults, validation rules, lookup filters,
line items and dependent picklists: each mistake is named with its file and path."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from metacrm.cli import main
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths

from conftest import SAMPLE

# A purchase with its lines, bought by a buyer. Fields a test adds to an object come after
# the ones below, so the first added field of a purchase is fields[5], of a line fields[6]
# and of a buyer fields[3].
BUYER = """
object: buyer
label: {en: Buyer, zh: 买家}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - name: level
    type: select
    label: {en: Level, zh: 级别}
    options:
      - {value: gold, label: {en: Gold, zh: 金}}
      - {value: silver, label: {en: Silver, zh: 银}}
  - {name: vip, type: boolean, label: {en: VIP, zh: 贵宾}}
"""
PURCHASE = """
object: purchase
label: {en: Purchase, zh: 采购单}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
  - {name: buyer, type: lookup, target: buyer, label: {en: Buyer, zh: 买家}}
  - {name: placed_on, type: date, label: {en: Placed on, zh: 下单日期}}
  - {name: lines, type: lines, target: purchase_line, label: {en: Lines, zh: 明细}}
  - name: total
    type: rollup
    returns: currency
    label: {en: Total, zh: 总额}
    rollup: {object: purchase_line, via: purchase, function: sum, field: amount}
"""
PURCHASE_LINE = """
object: purchase_line
label: {en: Purchase line, zh: 采购明细}
title_field: item
fields:
  - name: purchase
    type: lookup
    target: purchase
    master: true
    required: true
    label: {en: Purchase, zh: 采购单}
  - {name: item, type: text, label: {en: Item, zh: 品名}}
  - {name: quantity, type: decimal, scale: 2, label: {en: Quantity, zh: 数量}}
  - {name: price, type: currency, label: {en: Price, zh: 单价}}
  - name: amount
    type: formula
    returns: currency
    label: {en: Amount, zh: 金额}
    expression: quantity * price
  - {name: shipped, type: boolean, label: {en: Shipped, zh: 已发货}}
"""


def write_set(folder: Path, *, buyer: str = "", purchase: str = "", line: str = "",
              rules: str = "", **more: str) -> Path:
    """The three objects, with ``buyer``/``purchase``/``line`` appended to their fields,
    ``rules`` appended to the purchase, and ``more`` as extra files (name → text)."""
    (folder / "buyer.yaml").write_text(BUYER + buyer, encoding="utf-8")
    (folder / "purchase.yaml").write_text(PURCHASE + purchase + rules, encoding="utf-8")
    (folder / "purchase_line.yaml").write_text(PURCHASE_LINE + line, encoding="utf-8")
    for name, text in more.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_paths([folder])
    return [str(p) for p in caught.value.problems]


def field(text: str) -> str:
    """One more field, indented as an item of ``fields``."""
    return "".join(f"  {line}\n" for line in text.strip("\n").splitlines())


def test_the_sample_template_validates_cleanly():
    names = {d.name for d in load_paths([SAMPLE]).documents}
    assert {"quote", "quote_line", "contract", "payment", "product"} <= names


def test_the_purchase_set_validates_cleanly(tmp_path):
    assert len(load_paths([write_set(tmp_path)]).documents) == 3


# -- formulas ------------------------------------------------------------------------------
def test_a_formula_naming_an_unknown_field(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: shout, type: formula, returns: text, expression: "nme + '!'", label: {en: S, zh: S}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: unknown field 'nme' (at column 1)"]


def test_a_formula_naming_an_unknown_field_of_a_lookup(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: buyer_colour, type: formula, returns: text, expression: buyer.nope, label: {en: C, zh: C}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: unknown field 'buyer.nope' "
        "(at column 1)"]


def test_a_formula_may_read_a_field_of_a_lookup(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: buyer_level, type: formula, returns: text, expression: buyer.level, label: {en: L, zh: L}}
"""))
    assert load_paths([folder]).documents


def test_a_formula_whose_type_does_not_fit_its_returns(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: due_on, type: formula, returns: date, expression: name, label: {en: D, zh: D}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: the formula gives a text, "
        "but the field returns date"]


def test_formulas_referring_to_each_other_in_a_cycle(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: first_half, type: formula, expression: second_half + 1, label: {en: A, zh: A}}
- {name: second_half, type: formula, expression: first_half + 1, label: {en: B, zh: B}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: formulas refer to each other in a "
        "cycle: first_half → second_half → first_half"]


def test_a_formula_reading_itself_is_a_cycle(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: again, type: formula, expression: again + 1, label: {en: A, zh: A}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: formulas refer to each other in a "
        "cycle: again → again"]


def test_expression_on_a_field_that_is_not_a_formula(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: note, type: text, expression: name, label: {en: N, zh: N}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: a text field has no 'expression'"]


# -- roll-ups --------------------------------------------------------------------------------
def rollup(spec: str, returns: str = "decimal") -> str:
    return field(f"""
- name: summary
  type: rollup
  returns: {returns}
  label: {{en: S, zh: S}}
  rollup: {spec}
""")


@pytest.mark.parametrize("spec, via", [
    ("{object: purchase_line, via: item, function: count}", "purchase_line.item"),
    ("{object: buyer, via: level, function: count}", "buyer.level"),
    ("{object: purchase, via: buyer, function: count}", "purchase.buyer"),
], ids=["via a text field", "via a select field", "via a lookup to another object"])
def test_a_rollup_over_an_object_that_is_not_related(tmp_path, spec, via):
    folder = write_set(tmp_path, purchase=rollup(spec, returns="integer"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.via: '{via}' is not a lookup to "
        f"purchase: {via.split('.')[0]} is not related to purchase through it"]


def test_a_rollup_over_an_unknown_object(tmp_path):
    folder = write_set(tmp_path, purchase=rollup("{object: shipment, via: purchase, "
                                                 "function: count}", returns="integer"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.object: 'shipment' is not a known "
        "object"]


def test_the_sum_of_a_text_field(tmp_path):
    folder = write_set(tmp_path, purchase=rollup("{object: purchase_line, via: purchase, "
                                                 "function: sum, field: item}"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.field: cannot take the sum of a text "
        "field"]


def test_a_rollup_of_an_unknown_child_field(tmp_path):
    folder = write_set(tmp_path, purchase=rollup("{object: purchase_line, via: purchase, "
                                                 "function: max, field: weight}"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.field: 'weight' is not a field of "
        "purchase_line"]


def test_a_rollup_filter_naming_an_unknown_child_field(tmp_path):
    folder = write_set(tmp_path, purchase=rollup("{object: purchase_line, via: purchase, "
                                                 "function: count, filter: colour == 'red'}",
                                                 returns="integer"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.filter: unknown field 'colour' "
        "(at column 1)"]


def test_a_rollup_filter_that_cannot_run_in_sql(tmp_path):
    folder = write_set(tmp_path, purchase=rollup("{object: purchase_line, via: purchase, "
                                                 "function: count, filter: 'len(item) > 3'}",
                                                 returns="integer"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].rollup.filter: 'len(item)' cannot be used in "
        "a database filter (at column 1)"]


def test_a_rollup_filter_that_runs_in_sql_is_accepted(tmp_path):
    folder = write_set(tmp_path, purchase=rollup(
        "{object: purchase_line, via: purchase, function: sum, field: amount, "
        "filter: 'shipped and contains(item, \"50%\")'}"))
    assert load_paths([folder]).documents


# -- validation rules ------------------------------------------------------------------------
def rule(condition: str, fields: str = "[placed_on]") -> str:
    return f"""validation_rules:
  - name: check
    condition: "{condition}"
    message: {{en: Refused, zh: 不行}}
    fields: {fields}
"""


def test_a_validation_rule_naming_an_unknown_field_in_its_condition(tmp_path):
    folder = write_set(tmp_path, rules=rule("deliver_on >= placed_on"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: validation_rules[0].condition: unknown field "
        "'deliver_on' (at column 1)"]


def test_a_validation_rule_naming_an_unknown_field_in_its_fields(tmp_path):
    folder = write_set(tmp_path, rules=rule("placed_on <= today()", "[placed_on, ghost]"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: validation_rules[0].fields[1]: 'ghost' is not a field "
        "of purchase"]


def test_a_validation_rule_may_point_at_a_lines_field(tmp_path):
    folder = write_set(tmp_path, rules=rule("total > 0", "[lines]"))
    assert load_paths([folder]).documents


def test_a_validation_condition_that_is_not_a_boolean(tmp_path):
    folder = write_set(tmp_path, rules=rule("placed_on"))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: validation_rules[0].condition: the expression gives a "
        "date, but a boolean is needed"]


# -- default expressions ----------------------------------------------------------------------
def test_a_default_expression_of_the_wrong_type(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: due_on, type: date, default_expression: name, label: {en: D, zh: D}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].default_expression: the expression gives a "
        "text, but a date is needed"]


def test_a_default_expression_may_read_a_lookup(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: due_on, type: date, default_expression: "add_days(placed_on, 30)", label: {en: D, zh: D}}
- {name: is_vip, type: boolean, default_expression: buyer.vip, label: {en: V, zh: V}}
"""))
    assert load_paths([folder]).documents


def test_default_and_default_expression_together(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: note, type: text, default: none, default_expression: name, label: {en: N, zh: N}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].default_expression: give either default or "
        "default_expression, not both"]


# -- lookup filters ---------------------------------------------------------------------------
def test_a_lookup_filter_on_a_field_that_is_not_a_lookup(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: note, type: text, filter: "name == 'x'", label: {en: N, zh: N}}
"""))
    assert f"{folder / 'purchase.yaml'}: fields[5].filter: a text field cannot have a " \
           "lookup filter" in problems_of(folder)


def test_a_lookup_filter_on_a_field_that_is_not_a_lookup_is_reported_once(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: note, type: text, filter: "name == 'x'", label: {en: N, zh: N}}
"""))
    assert len(problems_of(folder)) == 1


def test_a_lookup_filter_naming_an_unknown_field_of_the_target(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: backup_buyer, type: lookup, target: buyer, filter: "colour == 'x'", label: {en: B, zh: B}}
"""))
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].filter: unknown field 'colour' (at column 1)"]


def test_a_lookup_filter_may_compare_with_the_record_being_edited(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- name: referrer
  type: lookup
  target: buyer
  filter: "vip and level == 'gold' and name != record.name"
  label: {en: R, zh: R}
"""))
    assert load_paths([folder]).documents


# -- line items ----------------------------------------------------------------------------------
NOTE = """
object: purchase_note
label: {en: Note, zh: 备注}
title_field: text
fields:
  - {name: purchase, type: lookup, target: purchase, required: true, label: {en: P, zh: P}}
  - {name: text, type: text, label: {en: Text, zh: 内容}}
"""


def test_lines_whose_target_has_no_master_lookup_to_the_parent(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: notes, type: lines, target: purchase_note, label: {en: Notes, zh: 备注}}
"""), purchase_note=NOTE)
    assert problems_of(folder) == [
        f"{folder / 'purchase.yaml'}: fields[5].target: purchase_note needs a lookup to "
        "purchase with master: true to be its lines"]


def test_a_master_lookup_that_is_not_required(tmp_path):
    folder = write_set(tmp_path)
    path = folder / "purchase_line.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    required: true\n", ""),
                    encoding="utf-8")
    assert problems_of(folder) == [
        f"{path}: fields[0].required: a master lookup must be required: a line belongs to a "
        "parent"]


# -- dependent picklists ----------------------------------------------------------------------
def tier(depends_on: str, parents: str) -> str:
    return field(f"""
- name: tier
  type: select
  depends_on: {depends_on}
  label: {{en: Tier, zh: 等级}}
  options:
    - {{value: top, label: {{en: Top, zh: 顶级}}, parents: [gold]}}
    - {{value: mid, label: {{en: Middle, zh: 中级}}, parents: {parents}}}
""")


def test_a_dependent_picklist_validates(tmp_path):
    assert load_paths([write_set(tmp_path, buyer=tier("level", "[gold, silver]"))]).documents


def test_a_dependent_option_under_a_value_the_controlling_field_lacks(tmp_path):
    folder = write_set(tmp_path, buyer=tier("level", "[silver, platinum]"))
    assert problems_of(folder) == [
        f"{folder / 'buyer.yaml'}: fields[3].options[1].parents: 'platinum' is not an option "
        "of level"]


def test_depends_on_on_a_field_that_is_not_a_select(tmp_path):
    folder = write_set(tmp_path, buyer=field("""
- {name: note, type: text, depends_on: level, label: {en: N, zh: N}}
"""))
    assert f"{folder / 'buyer.yaml'}: fields[3].depends_on: a text field cannot depend on " \
           "another" in problems_of(folder)


def test_depends_on_on_a_field_that_is_not_a_select_is_reported_once(tmp_path):
    folder = write_set(tmp_path, buyer=field("""
- {name: note, type: text, depends_on: level, label: {en: N, zh: N}}
"""))
    assert len(problems_of(folder)) == 1


@pytest.mark.parametrize("controller", ["name", "vip", "tier", "nowhere"])
def test_depends_on_a_field_that_is_not_another_select(tmp_path, controller):
    folder = write_set(tmp_path, buyer=tier(controller, "[gold]"))
    assert problems_of(folder) == [
        f"{folder / 'buyer.yaml'}: fields[3].depends_on: '{controller}' is not another select "
        "field of buyer"]


# -- through the command --------------------------------------------------------------------------
def validate(*paths: Path):
    return CliRunner().invoke(main, ["validate", *map(str, paths)], catch_exceptions=False)


def test_the_command_accepts_the_sample_template():
    result = validate(SAMPLE)
    assert result.exit_code == 0 and result.output.startswith("ok: ")


def test_the_command_names_file_and_path_of_an_unknown_field(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: shout, type: formula, returns: text, expression: "nme + '!'", label: {en: S, zh: S}}
"""))
    result = validate(folder)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"{folder / 'purchase.yaml'}: fields[5].expression: unknown field 'nme' (at column 1)",
        "1 problem(s)"]


def test_the_command_lists_a_cycle_and_a_bad_rollup_together(tmp_path):
    folder = write_set(tmp_path, purchase=field("""
- {name: first_half, type: formula, expression: second_half + 1, label: {en: A, zh: A}}
- {name: second_half, type: formula, expression: first_half + 1, label: {en: B, zh: B}}
- name: summary
  type: rollup
  label: {en: S, zh: S}
  rollup: {object: purchase_line, via: item, function: count}
"""))
    result = validate(folder)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{folder / 'purchase.yaml'}: fields[5].expression: formulas refer to each other " \
           "in a cycle: first_half → second_half → first_half" in lines
    assert any(line.startswith(f"{folder / 'purchase.yaml'}: fields[7].rollup.via: "
                               "'purchase_line.item' is not a lookup to purchase")
               for line in lines)
    assert lines[-1] == "2 problem(s)"
