"""The data-scope catalogue: how far a role's grant reaches (own, department, all…).

Each scope is a SQL condition on an object's table (``build``) and the same test on a
row in hand (``holds``), so a write that knows the values it stores needs no statement
to check them. The user's org subtrees are resolved once per request and bound as one
list parameter (see ``permissions.Access.subtree``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    any_,
    bindparam,
    false,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from metacrm.engine.systables import sys_department, sys_user

# An org subtree of up to this many ids goes into the condition as a list (cheap to build,
# cheap to test, one cached statement shape); a larger one stays a subquery.
MAX_LISTED_IDS = 500


@dataclass(frozen=True)
class ScopeContext:
    table: Table
    user_id: int
    department_id: int | None
    dialect: str
    ids: dict[str, list[int]]  # each subtree scope's ids, resolved for the request
    ordered: bool = False  # for a sorted page rather than a count

    def within(self, column, scope: str) -> ColumnElement:
        """``column`` is one of an org subtree's ids: a list bound as one parameter."""
        if self.ordered:
            column = Unindexed(column)
        ids = self.ids[scope]
        if len(ids) > MAX_LISTED_IDS:
            return column.in_(SUBTREES[scope](self.user_id, self.department_id))
        return ID_LISTS[self.dialect](column, f"scope_{scope}", ids)


class Unindexed(ColumnElement):
    """A column SQLite must not pick an index for: ``+column`` (SQLite's documented way).

    A sorted page of a department tree reads the ordering index and tests each row (a few
    rows per row shown); left to itself SQLite's planner, which has no histograms, would
    rather fetch the whole subtree through the department index and sort it. PostgreSQL
    has the statistics to choose, and gets the plain column.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _plain(element: Unindexed, compiler, **kw) -> str:
    return compiler.process(element.column, **kw)


@compiles(Unindexed, "sqlite")
def _unary_plus(element: Unindexed, compiler, **kw) -> str:
    return "+" + compiler.process(element.column, **kw)


# A list of ids as one parameter: a JSON array read by json_each on SQLite, an array on
# PostgreSQL; neither needs a placeholder per id nor a new statement per list length.
ID_LISTS: dict[str, Callable[[Any, str, list[int]], ColumnElement]] = {
    "sqlite": lambda column, key, ids: column.in_(
        select(literal_column("value")).select_from(
            func.json_each(bindparam(key, json.dumps(ids), type_=String())))),
    "postgresql": lambda column, key, ids: column == any_(
        bindparam(key, ids, type_=postgresql.ARRAY(BigInteger()))),
}


def subordinates(user_id: int) -> Select:
    """The user and everyone below them through the superior chain (UNION stops cycles)."""
    tree = select(sys_user.c.id).where(sys_user.c.id == user_id) \
        .cte("subordinates", recursive=True, nesting=True)
    tree = tree.union(select(sys_user.c.id).where(sys_user.c.superior_id == tree.c.id))
    return select(tree.c.id)


def department_tree(department_id: int | None) -> Select:
    """The department and all departments below it (none for no department)."""
    tree = select(sys_department.c.id).where(sys_department.c.id == department_id) \
        .cte("departments", recursive=True, nesting=True)
    tree = tree.union(select(sys_department.c.id)
                      .where(sys_department.c.parent_id == tree.c.id))
    return select(tree.c.id)


def _department(ctx: ScopeContext) -> ColumnElement:
    if ctx.department_id is None:
        return false()
    return ctx.table.c.department == ctx.department_id


def _department_tree(ctx: ScopeContext) -> ColumnElement:
    if ctx.department_id is None:
        return false()
    return ctx.within(ctx.table.c.department, "department_tree")


def _own_and_subordinates(ctx: ScopeContext) -> ColumnElement:
    return ctx.within(ctx.table.c.owner, "own_and_subordinates")


# The scopes that reach an org subtree: (user id, department id) → the subtree's ids.
SUBTREES: dict[str, Callable[[int, int | None], Select]] = {
    "department_tree": lambda user_id, department_id: department_tree(department_id),
    "own_and_subordinates": lambda user_id, department_id: subordinates(user_id),
}


Row = Mapping[str, Any]


@dataclass(frozen=True)
class DataScope:
    """One entry of the scope catalogue: how far a grant reaches. ``build``: the SQL
    condition; ``holds``: the same test on a row in hand (the values it will be stored
    with), so a new record is checked without reading it back."""

    name: str
    label: dict[str, str]
    build: Callable[[ScopeContext], ColumnElement]
    holds: Callable[[ScopeContext, Row], bool]


def _in_department(ctx: ScopeContext, row: Row) -> bool:
    return ctx.department_id is not None and row.get("department") == ctx.department_id


def _in_department_tree(ctx: ScopeContext, row: Row) -> bool:
    return ctx.department_id is not None and row.get("department") in ctx.ids["department_tree"]


SCOPES: dict[str, DataScope] = {s.name: s for s in (
    DataScope("none", {"en": "None", "zh": "无权限"}, lambda ctx: false(),
              lambda ctx, row: False),
    DataScope("own", {"en": "Own", "zh": "本人"}, lambda ctx: ctx.table.c.owner == ctx.user_id,
              lambda ctx, row: row.get("owner") == ctx.user_id),
    DataScope("own_and_subordinates", {"en": "Own and subordinates", "zh": "本人及下属"},
              _own_and_subordinates,
              lambda ctx, row: row.get("owner") in ctx.ids["own_and_subordinates"]),
    DataScope("department", {"en": "Own department", "zh": "本部门"}, _department,
              _in_department),
    DataScope("department_tree", {"en": "Department and sub-departments",
                                  "zh": "本部门及下属部门"}, _department_tree,
              _in_department_tree),
    DataScope("all", {"en": "All", "zh": "全部"}, lambda ctx: true(), lambda ctx, row: True),
)}
