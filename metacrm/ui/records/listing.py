"""A list page's state: the saved view, overridden by what the URL says."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import request

from metacrm.engine.reading import saved_views
from metacrm.engine.reading.operators import OPERATORS
from metacrm.engine.reading.query import MAX_PAGE_SIZE, ListParams
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.i18n import translate
from metacrm.ui.input import parse_json

PAGE_SIZES = (10, 20, 50, 100)
INTERNAL = frozenset({"version"})  # optimistic locking's counter: not for people


def offered_fields(obj: ObjectDef, shown: dict[str, FieldDef]) -> dict[str, FieldDef]:
    """What a list offers as filters and columns out of the ``shown`` fields, in the order
    people look for them: the list's columns, then the form's fields, then the rest, the
    system fields last; internal ones never."""
    order = [*obj.list_columns, *(n for s in obj.form for n in s.fields),
             *(f.name for f in shown.values() if not f.system)]
    order += [f.name for f in shown.values() if f.system]
    return {n: shown[n] for n in dict.fromkeys(order) if n in shown and n not in INTERNAL}


@dataclass
class ListState:
    obj: ObjectDef
    views: list[saved_views.SavedView]
    view: saved_views.SavedView
    filter: Any = None
    sort: str = ""
    q: str = ""
    columns: list[str] = field(default_factory=list)
    page_size: int = 20
    page: int = 1
    cursor: str | None = None
    exact_count: bool = False
    problems: list[str] = field(default_factory=list)
    fields: dict[str, FieldDef] = field(default_factory=dict)  # what the user may see

    def params(self, **overrides) -> ListParams:
        values = dict(filter=self.filter, sort=self.sort, q=self.q or None,
                      page=self.page, page_size=self.page_size, cursor=self.cursor,
                      columns=self.columns, lookup_titles=True,
                      count="exact" if self.exact_count else "capped")
        values.update(overrides)
        return ListParams(**values)

    def args(self, **overrides) -> dict[str, Any]:
        """Query-string arguments that reproduce this list (for links)."""
        out: dict[str, Any] = {"view": self.view.key}
        if self.filter != self.view.filter and self.filter is not None:
            out["filter"] = json.dumps(self.filter, ensure_ascii=False)
        if self.sort and self.sort != (self.view.sort or self.obj.default_sort):
            out["sort"] = self.sort
        if self.q:
            out["q"] = self.q
        if self.columns != list(self.view.columns or self.obj.list_columns):
            out["columns"] = ",".join(self.columns)
        if self.page_size != 20:
            out["page_size"] = self.page_size
        if self.exact_count:
            out["count"] = "exact"
        out.update({k: v for k, v in overrides.items()})
        return {k: v for k, v in out.items() if v not in (None, "")}

    @property
    def column_fields(self) -> list[FieldDef]:
        return [self.fields[c] for c in self.columns]


def filter_operators() -> dict[str, dict[str, str]]:
    """The operator catalogue as the filter builder reads it: each operator's label in the
    user's language and the value it takes."""
    return {op.name: {"label": translate(op.label), "value": op.value}
            for op in OPERATORS.values()}


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(raw))) if raw else default
    except ValueError:
        return default


def list_state(obj: ObjectDef, views: list[saved_views.SavedView],
               fields: dict[str, FieldDef]) -> ListState:
    """``fields``: the fields the user may see; columns outside them are dropped."""
    args = request.args
    key = args.get("view")
    view = next((v for v in views if v.key == key), None) or saved_views.default_view(views)
    state = ListState(obj, views, view, filter=view.filter,
                      sort=view.sort or obj.default_sort, columns=list(view.columns or
                                                                       obj.list_columns),
                      fields=fields)
    if "filter" in args:
        try:
            state.filter = parse_json(args["filter"], "filter") if args["filter"] else None
        except ValueError:
            state.problems.append("filter")
    state.sort = args.get("sort") or state.sort
    state.q = args.get("q", "").strip()[:100]
    if args.get("columns"):
        wanted = [c for c in args["columns"].split(",") if c in fields]
        state.columns = wanted or state.columns
    state.columns = [c for c in state.columns if c in fields]
    if obj.title_field not in state.columns:
        state.columns.insert(0, obj.title_field)
    state.page_size = _int(args.get("page_size"), 20, 1, MAX_PAGE_SIZE)
    state.page = _int(args.get("page"), 1, 1, 10_000)
    state.cursor = args.get("cursor") or None
    state.exact_count = args.get("count") == "exact"
    return state
