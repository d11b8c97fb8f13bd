"""The list-query compiler: filters, keyword search, sort and pages, all in SQL.

The pipeline follows Django's ChangeList: base → filters → search → ordering → page.
Every field and operator is checked against the metadata; a wrong one is BadQuery
(a 400), never an SQL error. Deep pages use keyset cursors, not growing OFFSETs,
and the default count is capped so huge tables are never counted in full.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dateutil import tz as dateutil_tz
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import ClauseAdapter

from metacrm import clock
from metacrm.engine.access import permissions, scopes
from metacrm.engine.actor import Actor
from metacrm.engine.errors import BadQuery
from metacrm.engine.reading.operators import FilterContext, compile_condition
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_department, sys_dimension_node, sys_user
from metacrm.metadata.fieldtypes import InvalidValue, storable
from metacrm.metadata.labels import Label
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import RECYCLE_BIN_FIELD_DEFS, FieldDef, ObjectDef

__all__ = ["COUNT_CAP", "ListParams", "MAX_PAGE_SIZE", "Page", "filter_context", "grouped_totals",
           "list_records", "neighbours", "totals"]

MAX_PAGE_SIZE = 200
MAX_SORT_KEYS = 5
MAX_FILTER_CONDITIONS = 50
MAX_FILTER_DEPTH = 5
MAX_OFFSET = 100_000
COUNT_CAP = 1_000  # "1,000+": the same small cost at every table size
NOT_NULL_FIELDS = frozenset({"id", "created_at", "updated_at", "version"})
COUNT_MODES = ("capped", "exact", "estimate", "none")
# Where the title of an id that is not a record comes from: (table, title column).
TITLE_TABLES = {"user": (sys_user, "display_name"), "department": (sys_department, "name"),
                "dimension": (sys_dimension_node, "name")}

# The words a refusal names the part of the request with.
PURPOSES = {"filter": Label(en="filter", zh="筛选"), "sort": Label(en="sort", zh="排序")}


@dataclass
class ListParams:
    filter: Any = None
    sort: str | None = None
    q: str | None = None
    page: int = 1
    page_size: int = 20
    cursor: str | None = None
    columns: Sequence[str] | None = None
    count: str = "capped"
    deleted: bool = False
    lookup_titles: bool = False


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int | None
    total_exact: bool
    page: int
    page_size: int
    next_cursor: str | None = None
    columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SortKey:
    field: FieldDef
    descending: bool


def filter_context(dialect: str, timezone: str | None = None) -> FilterContext:
    zone = (dateutil_tz.gettz(timezone) if timezone else None) or clock.zone()
    return FilterContext(dialect=dialect, today=clock.now().astimezone(zone).date(), tz=zone)


def filter_context_of(session: Session, timezone: str | None = None) -> FilterContext:
    """Filters as the session's database and the instance's time zone ("today") read them."""
    return filter_context(session.get_bind().dialect.name, timezone)


class ListQuery:
    """Compiles one list request for one object."""

    def __init__(self, registry: Registry, obj: ObjectDef, params: ListParams, dialect: str,
                 ctx: FilterContext | None = None, *,
                 scope: Callable[[bool], ColumnElement] | None = None,
                 count_scope: Callable[[], list[ColumnElement]] | None = None,
                 fields: dict[str, FieldDef] | None = None,
                 extra: ColumnElement | None = None,
                 titles_of: Callable[[ObjectDef], ColumnElement | None] | None = None):
        self.registry = registry
        self.extra = extra  # a condition of the caller's, e.g. a lookup filter
        self.obj = obj
        self.table = registry.table(obj)
        self.params = params
        self.dialect = dialect
        self.ctx = ctx or filter_context(dialect)
        # The permission condition (for a sorted page, or a count); None: a trusted caller.
        self.scope = scope
        self.count_scope = count_scope  # the same condition as disjoint parts, for counts
        # Which records of a looked-up object the reader may see the titles of (None: all).
        self.titles_of = titles_of
        self._scopes: dict[bool, ColumnElement] = {}
        self.fields = obj.queryable if fields is None else fields  # hidden ones left out
        if params.deleted:
            self.fields = {**self.fields, **{f.name: f for f in RECYCLE_BIN_FIELD_DEFS}}
        self.nulls_high = dialect == "postgresql"  # where each database sorts NULLs by default
        self._check_paging()

    def _check_paging(self) -> None:
        p = self.params
        if not isinstance(p.page_size, int) or not 1 <= p.page_size <= MAX_PAGE_SIZE:
            raise BadQuery(Message("page_size must be from 1 to %(most)d", most=MAX_PAGE_SIZE))
        if not isinstance(p.page, int) or p.page < 1 or (p.page - 1) * p.page_size > MAX_OFFSET:
            raise BadQuery(Message("page must be from 1 to %(last)d; use the cursor for deeper "
                                   "pages", last=MAX_OFFSET // p.page_size + 1))
        if p.count not in COUNT_MODES:
            raise BadQuery(Message("count must be one of %(modes)s", modes=", ".join(COUNT_MODES)))

    # -- pieces -------------------------------------------------------------------------
    def field(self, name: Any, purpose: str) -> FieldDef:
        f = self.fields.get(name) if isinstance(name, str) else None
        if f is None:
            raise BadQuery(Message("%(purpose)s: '%(name)s' is not a field of %(object)s",
                                   purpose=PURPOSES.get(purpose, purpose), name=str(name)[:63],
                                   object=named(self.obj.name, self.obj.label)),
                           field=str(name)[:63])
        return f

    def where(self, ordered: bool = False, scoped: bool = True) -> ColumnElement:
        clauses: list[ColumnElement[Any]] = [self.table.c.deleted.is_(self.params.deleted)]
        if self.scope is not None and scoped:
            # A sorted page reads its order's index; a count may start from the scope's.
            if ordered not in self._scopes:
                self._scopes[ordered] = self.scope(ordered)
            clauses.append(self._scopes[ordered])
        if self.params.filter not in (None, [], {}):
            counter = [0]
            clauses.append(self._filter_node(self.params.filter, 0, counter))
        if self.params.q:
            clauses.append(self._search(self.params.q))
        if self.extra is not None:
            clauses.append(self.extra)
        return and_(*clauses)

    def _filter_node(self, node: Any, depth: int, counter: list[int]) -> ColumnElement:
        if depth > MAX_FILTER_DEPTH:
            raise BadQuery(Message("filter: nested deeper than %(most)d levels",
                                   most=MAX_FILTER_DEPTH))
        if isinstance(node, dict):
            if len(node) != 1 or next(iter(node)) not in ("and", "or"):
                raise BadQuery(Message('filter: a group is {"and": [...]} or {"or": [...]}'))
            (join, children), = node.items()
            if not isinstance(children, list) or not children:
                raise BadQuery(Message("filter: '%(join)s' needs a non-empty list", join=join))
            parts = [self._filter_node(c, depth + 1, counter) for c in children]
            return and_(*parts) if join == "and" else or_(*parts)
        if isinstance(node, list) and node and isinstance(node[0], str):
            return self._condition(node, counter)
        if isinstance(node, list) and node:
            return and_(*(self._filter_node(c, depth + 1, counter) for c in node))
        raise BadQuery(Message(
            "filter: expected [field, op, value], a list of them, or an and/or group"))

    def _condition(self, node: list, counter: list[int]) -> ColumnElement:
        counter[0] += 1
        if counter[0] > MAX_FILTER_CONDITIONS:
            raise BadQuery(Message("filter: more than %(most)d conditions",
                                   most=MAX_FILTER_CONDITIONS))
        if len(node) not in (2, 3):
            raise BadQuery(Message("filter: a condition is [field, op, value]"))
        f = self.field(node[0], "filter")
        op = node[1] if isinstance(node[1], str) else repr(node[1])
        value = node[2] if len(node) == 3 else None
        return compile_condition(self.table.c[f.column], f, op, value, self.ctx)

    def _search(self, q: Any) -> ColumnElement:
        if not isinstance(q, str) or len(q) > 100:
            raise BadQuery(Message("q: keyword search takes up to 100 characters"))
        fields = [self.fields[n] for n in self.obj.search_fields if n in self.fields]
        parts = [compile_condition(self.table.c[f.column], f, "contains", q.strip(), self.ctx)
                 for f in fields if q.strip()]
        return or_(*parts) if parts else true()

    def sort_keys(self) -> list[SortKey]:
        spec = self.params.sort or self.obj.default_sort
        if not isinstance(spec, str):
            raise BadQuery(Message("sort: expected names separated by commas, '-' for descending"))
        keys = []
        for part in [p.strip() for p in spec.split(",") if p.strip()][:MAX_SORT_KEYS + 1]:
            f = self.field(part.lstrip("-"), "sort")
            if not f.kind.sortable:
                raise BadQuery(Message("sort: a %(type)s field cannot be sorted", type=f.type),
                               field=f.name)
            if f.name != "id":
                keys.append(SortKey(f, part.startswith("-")))
        if len(keys) > MAX_SORT_KEYS:
            raise BadQuery(Message("sort: at most %(most)d keys", most=MAX_SORT_KEYS))
        # id always ends the order, so pages are deterministic and keysets unique.
        descending = keys[0].descending if keys else spec.strip().startswith("-")
        keys.append(SortKey(self.fields["id"], descending))
        return keys

    def columns(self) -> list[FieldDef]:
        wanted = self.params.columns
        if not wanted:
            return list(self.fields.values())
        chosen = {"id": self.fields["id"], "version": self.fields["version"]}
        for name in wanted:
            chosen[name] = self.field(name, "columns")
        return list(chosen.values())

    # -- keyset -------------------------------------------------------------------------
    def _after(self, col, value: Any, descending: bool) -> ColumnElement:
        """Rows strictly after ``value`` in this key's order."""
        if descending:
            if value is None:
                return col.is_not(None) if self.nulls_high else false()
            return col < value if self.nulls_high else or_(col < value, col.is_(None))
        if value is None:
            return false() if self.nulls_high else col.is_not(None)
        return or_(col > value, col.is_(None)) if self.nulls_high else col > value

    @staticmethod
    def _equal(col, value: Any) -> ColumnElement:
        return col.is_(None) if value is None else col == value

    def keyset(self, keys: list[SortKey], values: list[Any]) -> ColumnElement:
        """Rows after the cursor for any sort; bounded on the first key where that is exact."""
        first, value = keys[0], values[0]
        bound = true()
        if value is not None and (first.field.name in NOT_NULL_FIELDS
                                  or not self._nulls_last(first)):
            # Redundant, but it lets the index scan start at the cursor instead of the top.
            col = self.table.c[first.field.column]
            bound = col <= value if first.descending else col >= value
        ors = []
        for i, key in enumerate(keys):
            equal = [self._equal(self.table.c[k.field.column], v)
                     for k, v in zip(keys[:i], values[:i], strict=True)]
            ors.append(and_(*equal, self._after(self.table.c[key.field.column], values[i],
                                                key.descending)))
        return and_(bound, or_(*ors))

    def segments_after(self, keys: list[SortKey], values: list[Any]) -> list[ColumnElement]:
        """The rows after a cursor as index-ordered segments, read one after the other.

        With one sort key (plus id) the rest of the non-NULL run is a row-value range,
        ``(amount, id) < (:v, :id)``, which both databases read straight off the
        ``(field, id)`` index, and the NULL run is an ``IS NULL`` range ordered by id. An
        OR of the two would force a sort of everything after the cursor. Longer sorts
        use the general condition.
        """
        if len(keys) != 2:
            return [self.keyset(keys, values)]
        key, tie = keys
        col, ids = self.table.c[key.field.column], self.table.c[tie.field.column]
        value, last_id = values
        if value is not None:
            # Bound with the columns' own types, so stored forms compare (exact decimals).
            cursor = tuple_(literal(value, col.type), literal(last_id, ids.type))
            bound = tuple_(col, ids) < cursor if key.descending else tuple_(col, ids) > cursor
            if key.field.name in NOT_NULL_FIELDS or not self._nulls_last(key):
                return [bound]
            return [bound, col.is_(None)]
        rest_of_nulls = and_(col.is_(None), ids < last_id if key.descending else ids > last_id)
        return [rest_of_nulls] if self._nulls_last(key) else [rest_of_nulls, col.is_not(None)]

    def _nulls_last(self, key: SortKey) -> bool:
        """Whether NULLs come after the values in this key's order on this database."""
        return self.nulls_high != key.descending

    def encode_cursor(self, keys: list[SortKey], row: dict[str, Any]) -> str:
        values = [None if row[k.field.name] is None else k.field.kind.to_json(row[k.field.name])
                  for k in keys]
        raw = json.dumps(values, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode_cursor(self, keys: list[SortKey], cursor: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(raw)
            if not isinstance(values, list) or len(values) != len(keys):
                raise ValueError
            return [self._cursor_value(k.field, v) for k, v in zip(keys, values, strict=True)]
        except (ValueError, binascii.Error, InvalidValue, TypeError, RecursionError):
            raise BadQuery(Message("cursor: not a cursor of this list (the sort may have changed)")) \
                from None

    @staticmethod
    def _cursor_value(f: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if f.kind.generated:
            if not isinstance(value, str) or not storable(value):
                raise ValueError
            return value
        return f.kind.coerce(value, f)

    # -- statements ---------------------------------------------------------------------
    def statement(self) -> tuple[Select, list[SortKey], list[FieldDef]]:
        keys = self.sort_keys()
        shown = self.columns()
        selected = {f.name: f for f in shown}
        for k in keys:
            selected.setdefault(k.field.name, k.field)
        t = self.table
        cols = [t.c[f.column] for f in selected.values()]
        stmt = select(*cols).where(self.where(ordered=True))
        if self.params.lookup_titles:
            stmt = self._join_titles(stmt, [f for f in shown if f.kind.references])
        stmt = stmt.order_by(*(t.c[k.field.column].desc() if k.descending
                               else t.c[k.field.column].asc() for k in keys))
        return stmt, keys, shown

    def _join_titles(self, stmt: Select, references: list[FieldDef]) -> Select:
        """Each lookup's title (a user's display name) as ``<field>__title``: one join each;
        a looked-up record out of the reader's scope joins nothing (its id only)."""
        joined: Any = self.table
        titles = []
        for f in references:
            on: ColumnElement
            if f.kind.references in TITLE_TABLES:
                table, column = TITLE_TABLES[f.kind.references]
                target = table.alias(f"t_{f.name}")
                title = target.c[column]
                on = target.c.id == self.table.c[f.column]
            else:
                target_obj = self.registry.objects[f.target_object]
                target = self.registry.table(target_obj).alias(f"t_{f.name}")
                title = target.c[target_obj.title_field]
                on = target.c.id == self.table.c[f.column]
                readable = self.titles_of(target_obj) if self.titles_of else None
                if readable is not None:
                    on = and_(on, ClauseAdapter(target).traverse(readable))
            joined = joined.outerjoin(target, on)
            titles.append(title.label(f"{f.name}__title"))
        return stmt.select_from(joined).add_columns(*titles) if titles else stmt

    def count_statement(self) -> Select:
        return select(func.count()).select_from(self.table).where(self.where())


def _count(session: Session, q: ListQuery, page: Page, fetched: int, offset: int) -> None:
    mode = q.params.count
    if mode == "none":
        page.total, page.total_exact = None, False
        return
    if not q.params.cursor and fetched < q.params.page_size and (fetched or offset == 0):
        page.total, page.total_exact = offset + fetched, True  # the last page tells the total
        return
    if mode == "estimate" and q.dialect == "postgresql":
        plan = session.execute(Explain(select(q.table.c.id).where(q.where()))).scalar_one()
        if isinstance(plan, str):
            plan = json.loads(plan)
        page.total, page.total_exact = int(plan[0]["Plan"]["Plan Rows"]), False
        return
    if mode == "exact":
        page.total, page.total_exact = session.execute(q.count_statement()).scalar_one(), True
        return
    total = session.execute(capped_count(q)).scalar_one()
    page.total, page.total_exact = min(total, COUNT_CAP), total <= COUNT_CAP


def capped_count(q: ListQuery) -> Select:
    """Up to COUNT_CAP + 1 matching rows, counted: one statement.

    A scope made of disjoint parts (the roles' reach, then team records outside it) is
    counted part by part and summed, each part on its own index.
    """
    pieces = q.count_scope() if q.count_scope is not None else []
    if len(pieces) < 2:
        capped = select(q.table.c.id).where(q.where()).limit(COUNT_CAP + 1).subquery()
        return select(func.count()).select_from(capped)
    counts = [select(func.count()).select_from(
        select(q.table.c.id).where(q.where(scoped=False), piece).limit(COUNT_CAP + 1)
        .subquery()).scalar_subquery() for piece in pieces]
    return select(sum(counts[1:], counts[0]))


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement: PostgreSQL's row estimate, for free."""

    inherit_cache = False

    def __init__(self, statement: Select):
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler, **kw) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _fetch(session: Session, q: ListQuery, stmt: Select, keys: list[SortKey],
           offset: int) -> list[dict[str, Any]]:
    """One page (and one row more, to know if there is a next one)."""
    wanted = q.params.page_size + 1
    if not q.params.cursor:
        stmt = stmt.limit(wanted)
        return [dict(r._mapping) for r in session.execute(stmt.offset(offset) if offset
                                                         else stmt)]
    rows: list[dict[str, Any]] = []
    for segment in q.segments_after(keys, q.decode_cursor(keys, q.params.cursor)):
        rows.extend(dict(r._mapping) for r in session.execute(
            stmt.where(segment).limit(wanted - len(rows))))
        if len(rows) >= wanted:
            break
    return rows


def scoped(session: Session, registry: Registry, obj: ObjectDef, params: ListParams,
           actor: Actor, operation: str = "read", ctx: FilterContext | None = None,
           extra: ColumnElement | None = None) -> ListQuery:
    """A list query limited to what ``actor`` may ``operation``, without hidden fields."""
    permissions.require(session, actor, obj, operation)
    table = registry.table(obj)
    return ListQuery(registry, obj, params, session.get_bind().dialect.name, ctx,
                     scope=lambda ordered: permissions.condition(
                         session, actor, obj, table, operation, ordered=ordered),
                     count_scope=lambda: permissions.count_pieces(
                         session, actor, obj, table, operation),
                     fields=permissions.visible_fields(session, actor, obj, registry),
                     extra=extra, titles_of=lambda target: _readable_titles(
                         session, registry, target, actor))


def _readable_titles(session: Session, registry: Registry, target: ObjectDef, actor: Actor
                     ) -> ColumnElement | None:
    """The records of ``target`` whose titles ``actor`` may see: those in his read scope,
    and none when its title field is hidden from him; None: all of them."""
    if target.title_field in permissions.hidden_fields(session, actor, target, registry):
        return false()
    if permissions.access_of(session, actor).is_super:
        return None
    return permissions.condition(session, actor, target, registry.table(target), "read",
                                 inline_teams=True)


def list_records(session: Session, registry: Registry, obj: ObjectDef | str, params: ListParams,
                 *, actor: Actor, ctx: FilterContext | None = None,
                 operation: str = "read", extra: ColumnElement | None = None) -> Page:
    """One page; ``extra`` narrows it further (a lookup filter's candidates)."""
    obj = registry.object(obj) if isinstance(obj, str) else obj
    q = scoped(session, registry, obj, params, actor, operation, ctx, extra)
    stmt, keys, shown = q.statement()
    offset = 0 if params.cursor else (params.page - 1) * params.page_size
    rows = _fetch(session, q, stmt, keys, offset)
    more = len(rows) > params.page_size
    rows = rows[:params.page_size]
    page = Page(items=rows, total=None, total_exact=False, page=params.page,
                page_size=params.page_size, columns=[f.name for f in shown])
    if more and rows:
        page.next_cursor = q.encode_cursor(keys, rows[-1])
    _count(session, q, page, len(rows), offset)
    return page


def totals(session: Session, registry: Registry, obj: ObjectDef, params: ListParams,
           fields: Sequence[FieldDef], *, actor: Actor) -> dict[str, Any]:
    """Sums of the given fields over every record the list matches (one statement)."""
    q = scoped(session, registry, obj, params, actor)
    fields = [f for f in fields if f.name in q.fields]
    if not fields:
        return {}
    stmt = select(*(func.sum(q.table.c[f.column]).label(f.name) for f in fields)).where(q.where())
    return dict(session.execute(stmt).one()._mapping)


def grouped_totals(session: Session, registry: Registry, obj: ObjectDef, params: ListParams,
                   by: FieldDef, fields: Sequence[FieldDef], *, actor: Actor
                   ) -> dict[Any, dict[str, Any]]:
    """Per value of ``by``: the count of matching records and the sums of ``fields``, in one
    GROUP BY statement under the same scope as the list (a kanban board's columns, a
    funnel's stages)."""
    q = scoped(session, registry, obj, params, actor)
    if by.name not in q.fields:
        return {}
    column = q.table.c[by.column]
    fields = [f for f in fields if f.name in q.fields]
    # GROUP BY +column on SQLite: to skip the grouping sort its planner would read the whole
    # table through the column's index, ignoring the scope's (10× slower at 100k rows).
    stmt = (select(column, func.count().label("_count"),
                   *(func.sum(q.table.c[f.column]).label(f.name) for f in fields))
            .where(q.where()).group_by(scopes.Unindexed(column)))
    return {row[0]: {k: v for k, v in row._mapping.items() if k != by.column}
            for row in session.execute(stmt)}


def neighbours(session: Session, registry: Registry, obj: ObjectDef, params: ListParams,
               record: dict[str, Any], *, actor: Actor) -> tuple[int | None, int | None]:
    """The ids before and after ``record`` in the list ``params`` describes."""
    q = scoped(session, registry, obj, params, actor)
    keys = q.sort_keys()
    values = [record.get(k.field.name) for k in keys]
    found = []
    for order in (keys, [SortKey(k.field, not k.descending) for k in keys]):
        t = q.table
        stmt = (select(t.c.id).where(q.where(ordered=True), q.keyset(order, values))
                .order_by(*(t.c[k.field.column].desc() if k.descending
                            else t.c[k.field.column].asc() for k in order)).limit(1))
        found.append(session.execute(stmt).scalar())
    following, previous = found
    return previous, following
