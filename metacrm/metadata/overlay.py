"""Local changes are an overlay on what a template ships; merging them is pure.

An overlay has the shape of the document it changes, but only the parts that differ.
Lists of items (fields, options, business types) are matched by stable key, so a
relabelled or renamed item keeps its local changes; ``{"key": k, "_removed": true}``
drops an item and ``null`` drops a key. The base items an overlay list names take its
order, in their own slots; an overlay naming every base item gives the whole order.
"""

from __future__ import annotations

from typing import Any

ITEM_KEYS = ("key", "name", "value")


def item_key(item: Any) -> str | None:
    if isinstance(item, dict):
        for k in ITEM_KEYS:
            if k in item:
                return str(item[k])
    return None


def keyed(items: list) -> bool:
    return bool(items) and all(item_key(i) is not None for i in items)


def merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value)
        return out
    if isinstance(base, list) and isinstance(overlay, list) and keyed(base) and keyed(overlay):
        return _merge_items(base, overlay)
    return overlay


def _merge_items(base: list[dict], overlay: list[dict]) -> list[dict]:
    changes = {item_key(i): i for i in overlay}
    by_key = {item_key(i): i for i in base}
    if all(k in changes for k in by_key):  # the overlay gives the whole order
        return [merge(by_key[k], _strip(c)) if k in by_key else c
                for k, c in changes.items() if not c.get("_removed")]
    # The base items it names keep their slots but take its order (a local reorder
    # survives a template upgrade that adds items); new items follow.
    named = iter([k for k in changes if k in by_key])
    out = []
    for item in base:
        key = next(named) if item_key(item) in changes else item_key(item)
        item = by_key[key]
        change = changes.get(key)
        if change is None:
            out.append(item)
        elif not change.get("_removed"):
            out.append(merge(item, _strip(change)))
    out.extend(i for k, i in changes.items() if k not in by_key and not i.get("_removed"))
    return out


def _strip(change: dict) -> dict:
    return {k: v for k, v in change.items() if k != "_removed"}


def make_overlay(base: Any, target: Any) -> Any:
    """The smallest overlay that ``merge`` turns ``base`` into ``target``; ``None`` when
    they are equal. Kept small so a template upgrade can merge its own changes around it."""
    if base == target:
        return None
    if isinstance(base, dict) and isinstance(target, dict):
        out = {k: None for k in base if k not in target}
        for key, value in target.items():
            if key not in base:
                out[key] = value
            elif base[key] != value:
                change = make_overlay(base[key], value)
                out[key] = change if change is not None else value
        return out if merge(base, out) == target else target
    if isinstance(base, list) and isinstance(target, list) and keyed(base) and keyed(target):
        items = _overlay_items(base, target)
        if merge(base, items) == target:
            return items
    return target


def _overlay_items(base: list[dict], target: list[dict]) -> list[dict]:
    before = {item_key(i): i for i in base}
    after = {item_key(i): i for i in target}
    reordered = [k for k in after if k in before] != [k for k in before if k in after]
    out = []
    for key, item in after.items():
        if key not in before:
            out.append(item)
        elif before[key] != item:
            change = make_overlay(before[key], item)
            out.append({**_key_of(item), **change})
        elif reordered:
            out.append(_key_of(item))
    removed = [{**_key_of(i), "_removed": True} for k, i in before.items() if k not in after]
    if reordered:  # every base item named, in the target's order, removals last
        return out + removed
    return removed + out


def _key_of(item: dict) -> dict:
    for k in ITEM_KEYS:
        if k in item:
            return {k: item[k]}
    return {}
