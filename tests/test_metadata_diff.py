"""The readable diff between two metadata versions."""

from __future__ import annotations

from metacrm.metadata.diff import diff_documents

BEFORE = {("object", "customer"): {
    "object": "customer", "label": {"en": "Customer", "zh": "客户"},
    "fields": [{"name": "name", "type": "text", "label": {"en": "Name", "zh": "名称"}},
               {"name": "level", "type": "select", "label": {"en": "Level", "zh": "级别"}}]}}


def changed(**fields) -> dict:
    doc = BEFORE[("object", "customer")]
    return {("object", "customer"): {**doc, **fields}}


def lines(after: dict) -> list[str]:
    return [str(line) for line in diff_documents(BEFORE, after)]


def test_a_relabel_reads_as_one_label_change():
    fields = [dict(f) for f in BEFORE[("object", "customer")]["fields"]]
    fields[1]["label"] = {"en": "Grade", "zh": "级别"}
    assert lines(changed(fields=fields)) == [
        'object customer › fields › level › label › en: "Level" → "Grade"']


def test_an_added_field_reads_as_added():
    fields = [*BEFORE[("object", "customer")]["fields"],
              {"name": "vat", "type": "text", "label": {"en": "VAT", "zh": "税号"}}]
    assert lines(changed(fields=fields)) == ["object customer › fields › vat: added"]


def test_a_reorder_reads_as_reordered():
    fields = list(reversed(BEFORE[("object", "customer")]["fields"]))
    assert lines(changed(fields=fields)) == ["object customer › fields: reordered"]


def test_a_new_setting_shows_its_value():
    fields = [dict(f) for f in BEFORE[("object", "customer")]["fields"]]
    fields[0]["required"] = True
    assert lines(changed(fields=fields)) == ["object customer › fields › name › required: added true"]


def test_a_new_object_reads_as_added():
    after = {**BEFORE, ("object", "equipment"): {"object": "equipment"}}
    assert lines(after) == ["object equipment: added"]
