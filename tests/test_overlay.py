"""Local overlays merge onto template bases by stable key."""

from metacrm.metadata.overlay import merge

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
