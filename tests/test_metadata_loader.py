"""Loading template folders: every problem at once, each naming the file and the path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metacrm.metadata.fieldtypes import FIELD_TYPES
from metacrm.metadata.loader import schema_validator
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for p in (ROOT / "object_defs").rglob("*") if p.suffix in (".yaml", ".yml",
                                                                           ".json"))

MINIMAL = """
object: thing
label: {en: Thing, zh: 物品}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh: 名称}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path, known: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_paths(paths, known_objects=known)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_validates_with_its_template(path: Path):
    loaded = load_paths([path.parent])
    assert any(d.source.endswith(path.name) for d in loaded.documents)


def test_schema_lists_exactly_the_catalogued_field_types():
    schema = schema_validator("object").schema
    assert schema["$defs"]["fieldType"]["enum"] == list(FIELD_TYPES)


def test_a_minimal_object_loads(tmp_path):
    loaded = load_paths([write(tmp_path, "thing.yaml", MINIMAL)])
    assert [d.name for d in loaded.documents] == ["thing"]


def test_json_files_load_like_yaml(tmp_path):
    doc = {"object": "thing", "label": {"en": "Thing", "zh": "物品"}, "title_field": "name",
           "fields": [{"name": "name", "type": "text", "label": {"en": "Name", "zh": "名称"}}]}
    loaded = load_paths([write(tmp_path, "thing.json", json.dumps(doc))])
    assert loaded.documents[0].content == doc


def test_unknown_field_type_names_file_and_path(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: b, type: strng, label: {en: B, zh: B}}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: fields[1].type: 'strng' is not one of [")


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "object: x\nfields: [unclosed\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: line ")


def test_every_problem_is_reported_at_once(tmp_path):
    write(tmp_path, "a.yaml", MINIMAL.replace("type: text", "type: nope"))
    write(tmp_path, "b.yaml", MINIMAL.replace("thing", "other").replace("title_field: name",
                                                                         "title_field: missing"))
    write(tmp_path, "c.yaml", "just text")
    found = problems_of(tmp_path)
    assert len(found) == 3
    assert any("a.yaml: fields[0].type" in p for p in found)
    assert any("b.yaml: title_field: 'missing' is not a field of other" in p for p in found)
    assert any("c.yaml: (root): a definition file must hold a mapping" in p for p in found)


def test_lookup_to_a_missing_object_is_refused(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: owner_co, type: lookup, target: nowhere, label: {en: C, zh: C}}\n")
    assert problems_of(path) == [f"{path}: fields[1].target: lookup target 'nowhere' is not a known object"]


def test_lookup_to_an_installed_object_is_accepted(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: co, type: lookup, target: customer, label: {en: C, zh: C}}\n")
    assert load_paths([path], known_objects=["customer"]).documents


def test_layout_and_list_columns_must_name_fields(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + """
layouts:
  form: [{label: {en: A, zh: A}, fields: [name, ghost]}]
  list: {columns: [name, phantom], sort: -spook}
""")
    found = problems_of(path)
    assert f"{path}: layouts.form[0].fields[1]: 'ghost' is not a field of thing" in found
    assert f"{path}: layouts.list.columns[1]: 'phantom' is not a field of thing" in found
    assert f"{path}: layouts.list.sort: 'spook' is not a field of thing" in found


@pytest.mark.parametrize("name, message", [
    ("select", "'select' is an SQL reserved word"),
    ("owner", "'owner' is a system column"),
    ("created_at", "'created_at' is a system column"),
])
def test_reserved_and_system_names_are_refused(tmp_path, name, message):
    path = write(tmp_path, "thing.yaml", MINIMAL + f"  - {{name: {name}, type: text, label: {{en: X, zh: X}}}}\n")
    assert problems_of(path) == [f"{path}: fields[1].name: {message}"]


def test_names_must_match_the_identifier_pattern(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: Bad-Name, type: text, label: {en: X, zh: X}}\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: fields[1].name: 'Bad-Name' does not match")


def test_duplicate_field_names_are_refused(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: name, type: text, label: {en: X, zh: X}}\n")
    assert f"{path}: fields[1].name: field 'name' is defined twice" in problems_of(path)


def test_labels_need_both_languages(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL.replace("{en: Thing, zh: 物品}", "{en: Thing}"))
    [problem] = problems_of(path)
    assert problem == f"{path}: label: 'zh' is a required property"


def test_select_needs_options_and_picklist_must_exist(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + """
  - {name: a, type: select, label: {en: A, zh: A}}
  - {name: b, type: select, picklist: nowhere, label: {en: B, zh: B}}
""")
    found = problems_of(path)
    assert f"{path}: fields[1]: a select field needs 'options'" in found
    assert f"{path}: fields[2].picklist: picklist 'nowhere' does not exist" in found


def test_defaults_are_checked_against_the_type(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: n, type: integer, default: many, label: {en: N, zh: N}}\n")
    assert problems_of(path) == [f"{path}: fields[1].default: default must be a whole number"]


def test_auto_number_patterns_need_one_sequence(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: code, type: auto_number, pattern: 'X-{yyyy}', label: {en: C, zh: C}}\n")
    assert problems_of(path) == [f"{path}: fields[1].pattern: the pattern needs exactly one {{seq}} or {{seq:N}}"]


def test_business_type_picklists_must_be_options(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + """
  - name: level
    type: select
    label: {en: L, zh: L}
    options: [{value: A, label: {en: A, zh: A}}]
business_types:
  - {name: big, label: {en: Big, zh: 大}, picklists: {level: [A, Z]}}
""")
    assert problems_of(path) == [f"{path}: business_types[0].picklists.level[1]: 'Z' is not an option of level"]


def test_two_files_defining_one_object_are_refused(tmp_path):
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", MINIMAL)
    found = problems_of(tmp_path)
    assert len(found) == 2 and all("defined in more than one file" in p for p in found)


def test_a_missing_path_is_a_problem_not_a_crash(tmp_path):
    assert problems_of(tmp_path / "nothing") == [f"{tmp_path / 'nothing'}: (file): no such file or folder"]


def test_a_file_with_a_schema_error_is_still_cross_checked(tmp_path):
    write(tmp_path, "thing.yaml", MINIMAL
          + "  - {name: kind, type: strng, label: {en: K, zh: K}}\n"
          + "  - {name: co, type: lookup, target: nowhere, label: {en: C, zh: C}}\n")
    path = tmp_path / "thing.yaml"
    found = problems_of(tmp_path)
    assert len(found) == 2
    assert found[0].startswith(f"{path}: fields[1].type: 'strng' is not one of [")
    assert found[1] == f"{path}: fields[2].target: lookup target 'nowhere' is not a known object"


def test_items_left_out_by_the_schema_are_not_reported_as_missing(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL.replace("type: text", "type: strng")
                 + "  - {name: note, type: text, label: {en: N, zh: N}}\n"
                 + "search_fields: [name]\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: fields[0].type: 'strng' is not one of [")


def test_min_and_max_are_kept_on_numeric_fields(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: n, type: currency, min: 0, max: 1000000.5, label: {en: N, zh: N}}\n")
    [doc] = load_paths([path]).documents
    from metacrm.metadata.model import build_object
    amount = build_object(doc.content).all_fields["n"]
    assert (str(amount.min_value), str(amount.max_value)) == ("0", "1000000.5")


def test_min_and_max_belong_to_numeric_fields_only(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: d, type: date, min: 0, label: {en: D, zh: D}}\n")
    assert problems_of(path) == [f"{path}: fields[1].min: a date field has no 'min'"]


def test_min_must_not_exceed_max(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: p, type: percent, min: 100, max: 0, label: {en: P, zh: P}}\n")
    assert problems_of(path) == [f"{path}: fields[1].max: max must not be smaller than min"]


def test_a_default_outside_the_range_is_refused(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL + "  - {name: n, type: integer, min: 0, default: -1, label: {en: N, zh: N}}\n")
    assert problems_of(path) == [f"{path}: fields[1].default: default must be at least 0"]


def test_a_demo_hint_must_name_a_kind_of_the_demo_catalogue(tmp_path):
    path = write(tmp_path, "thing.yaml", MINIMAL.replace("label: {en: Name, zh: 名称}}", "label: {en: Name, zh: 名称}, demo: pet_name}"))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: fields[0].demo: unknown demo kind 'pet_name' (company, ")
