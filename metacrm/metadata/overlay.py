"""Local changes are an overlay on what a template ships; merging them is pure.

An overlay has the shape of the document it changes, but only the parts that differ.
Lists of items (fields, options, business types) are matched by stable key, so a
relabelled or renamed item keeps its local changes; ``{"key": k, "_removed": true}``
drops an item and ``null`` drops a key.
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


def _keyed(items: list) -> bool:
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
    if isinstance(base, list) and isinstance(overlay, list) and _keyed(base) and _keyed(overlay):
        return _merge_items(base, overlay)
    return overlay


def _merge_items(base: list[dict], overlay: list[dict]) -> list[dict]:
    changes = {item_key(i): i for i in overlay}
    out = []
    for item in base:
        key = item_key(item)
        change = changes.pop(key, None)
        if change is None:
            out.append(item)
        elif not change.get("_removed"):
            out.append(merge(item, {k: v for k, v in change.items() if k != "_removed"}))
    out.extend(i for i in changes.values() if not i.get("_removed"))
    return out
