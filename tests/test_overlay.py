"""Local overlays merge onto template bases by stable key."""

import pytest

from metacrm.metadata.overlay import make_overlay, merge

BASE = {"object": "customer", "label": {"en": "Customer", "zh": "客户"},
        "fields": [{"name": "name", "type": "text"}, {"name": "level", "type": "select"}]}


def test_overlay_changes_only_what_it_names():
    merged = merge(BASE, {"label": {"zh": "客户档案"}})
    assert merged["label"] == {"en": "Customer", "zh": "客户档案"}
    assert merged["fields"] == BASE["fields"]


def test_overlay_items_match_base_items_by_key():
    merged = merge(BASE, {"fields": [{"name": "level", "required": True}]})
    assert merged["fields"][1] == {"name": "level", "type": "select", "required": True}


def test_overlay_adds_new_items_after_the_base_ones():
    merged = merge(BASE, {"fields": [{"name": "vip", "type": "boolean"}]})
    assert [f["name"] for f in merged["fields"]] == ["name", "level", "vip"]


def test_overlay_can_remove_items_and_keys():
    merged = merge(BASE, {"fields": [{"name": "level", "_removed": True}], "label": None})
    assert [f["name"] for f in merged["fields"]] == ["name"]
    assert "label" not in merged


def test_base_is_not_mutated():
    merge(BASE, {"fields": [{"name": "level", "required": True}]})
    assert "required" not in BASE["fields"][1]


# -- the smallest overlay for a target (what admin changes store) -------------------------
DOC = {"object": "x", "label": {"en": "X", "zh": "X"},
        "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "integer"},
                   {"name": "c", "type": "date"}]}


def with_fields(*fields) -> dict:
    return {**DOC, "fields": list(fields)}


@pytest.mark.parametrize("target", [
    {**DOC, "label": {"en": "Y", "zh": "X"}},
    with_fields(*DOC["fields"], {"name": "d", "type": "text"}),
    with_fields(DOC["fields"][2], DOC["fields"][0], DOC["fields"][1]),
    with_fields(DOC["fields"][0], DOC["fields"][2]),
    with_fields({"name": "new", "type": "text"}, *DOC["fields"]),
    with_fields({**DOC["fields"][1], "archived": True}, DOC["fields"][0]),
], ids=["relabel", "add", "reorder", "remove", "insert-first", "archive-reorder-remove"])
def test_make_overlay_merges_back_into_the_target(target):
    assert merge(DOC, make_overlay(DOC, target)) == target


def test_a_relabel_is_stored_as_the_label_alone():
    target = {**DOC, "fields": [{**DOC["fields"][0], "label": {"en": "A", "zh": "甲"}},
                                 *DOC["fields"][1:]]}
    assert make_overlay(DOC, target) == {
        "fields": [{"name": "a", "label": {"en": "A", "zh": "甲"}}]}


def test_an_overlay_naming_every_item_gives_their_order():
    overlay = {"fields": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}
    assert [f["name"] for f in merge(DOC, overlay)["fields"]] == ["c", "a", "b"]


def test_an_upgrade_adding_a_field_keeps_a_local_reorder():
    local = make_overlay(DOC, with_fields(DOC["fields"][1], DOC["fields"][0],
                                           DOC["fields"][2]))
    upgraded = with_fields(*DOC["fields"], {"name": "d", "type": "text"})
    assert [f["name"] for f in merge(upgraded, local)["fields"]] == ["b", "a", "c", "d"]


def test_equal_documents_need_no_overlay():
    assert make_overlay(DOC, dict(DOC)) is None
