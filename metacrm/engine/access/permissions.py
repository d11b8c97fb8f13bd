"""Data permissions compiled to SQL: (user, object, operation) → one WHERE condition.

A user's roles grant each operation on each object a data scope (``scopes.SCOPES``);
an object with the ``team`` feature adds the records the user is a team member of, and
an object with dimension fields narrows the scope to the user's dimension values. The
result is a single SQL condition, so lists, counts, type-ahead, related lists, exports
and writes filter in the database, on indexes, never over fetched rows. ``explain``
evaluates the same parts one by one to say which rule decides.

The user's sub-departments or subordinates and team records are read once per request
(recursive CTEs, indexed) and bound into the condition as one array parameter each, so
the planners see real values; dimension subtrees stay CTEs nested in the condition.
Built conditions are cached by everything they depend on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access.scopes import (
    ID_LISTS,
    MAX_LISTED_IDS,
    SCOPES,
    SUBTREES,
    Row,
    ScopeContext,
)
from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import (
    sys_dimension_node,
    sys_role,
    sys_role_field,
    sys_role_grant,
    sys_team_member,
    sys_user,
    sys_user_dimension,
    sys_user_role,
)
from metacrm.metadata.labels import Label
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["ALL_OBJECTS", "Access", "FIELD_ACCESS", "OPERATIONS", "OPERATION_LABELS", "Parts",
           "SCOPES", "Verdict", "access_from_rows", "access_of", "access_rows", "can",
           "condition", "count_pieces", "dimension_nodes", "explain",
           "field_access", "forget_access", "governing", "granted", "hidden_by_some_role",
           "hidden_fields", "parts",
           "record_operations", "remember_access", "require", "verb",
           "visible_fields", "without_hidden"]

OPERATIONS = ("read", "create", "edit", "delete", "transfer", "import", "export")
OPERATION_LABELS = {
    "read": {"en": "View", "zh": "查看"},
    "create": {"en": "Create", "zh": "新建"},
    "edit": {"en": "Edit", "zh": "编辑"},
    "delete": {"en": "Delete", "zh": "删除"},
    "transfer": {"en": "Transfer", "zh": "转移"},
    "import": {"en": "Import", "zh": "导入"},
    "export": {"en": "Export", "zh": "导出"},
}
# The operations as verbs in messages ("you may not edit this record").
VERBS = {"read": Label("read", "查看"), "create": Label("create", "新建"),
         "edit": Label("edit", "编辑"), "delete": Label("delete", "删除"),
         "transfer": Label("transfer", "转移"), "import": Label("import", "导入"),
         "export": Label("export", "导出")}
ALL_OBJECTS = "*"  # a role's grant for every object it does not name
# Team members read the record; read-write members also edit it (千丝CRM 团队成员).
TEAM_ACCESS = {"read": ("read", "write"), "edit": ("write",)}
FIELD_ACCESS = ("hidden", "read_only", "editable")  # from least to most
_FIELD_RANK = {a: i for i, a in enumerate(FIELD_ACCESS)}



@dataclass(frozen=True)
class RoleGrant:
    role: str
    label: dict[str, str]
    scope: str


@dataclass
class Access:
    """What one user's roles allow, loaded once per session (two small queries)."""

    user_id: int | None
    department_id: int | None
    is_super: bool
    roles: dict[str, dict[str, str]] = field(default_factory=dict)  # name → label
    _grants: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    _fields: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    _subtrees: dict[str, list[int]] = field(default_factory=dict)
    _teams: dict[tuple, list[int] | None] = field(default_factory=dict)
    _field_access: dict[str, tuple[ObjectDef, dict[str, str]]] = field(default_factory=dict)

    @property
    def uid(self) -> int:
        """The user these grants are for (the system's access, SUPER, is never scoped)."""
        if self.user_id is None:
            raise ValueError("the system's access is not a user's")
        return self.user_id

    def teams(self, session: Session, obj: ObjectDef, operation: str,
              today: dt.date) -> list[int] | None:
        """Records the user is on the team of (None: too many to list), once per request."""
        if operation not in TEAM_ACCESS or "team" not in obj.features:
            return []
        key = (obj.name, operation, today)
        if key not in self._teams:
            ids = session.execute(team_records(self.uid, obj.name, operation, today)
                                  .limit(MAX_LISTED_IDS + 1)).scalars().all()
            self._teams[key] = sorted(ids) if len(ids) <= MAX_LISTED_IDS else None
        return self._teams[key]

    def subtree(self, session: Session, scope: str) -> list[int]:
        """The user's department subtree or subordinates: read once, kept for the request."""
        found = self._subtrees.get(scope)
        if found is None:
            if scope == "department_tree" and self.department_id is None:
                found = []
            else:
                found = sorted(session.execute(
                    SUBTREES[scope](self.uid, self.department_id)).scalars())
            self._subtrees[scope] = found
        return found

    def grants(self, object_name: str, operation: str) -> list[RoleGrant]:
        """Each role's scope for the operation: its grant for the object, else for '*'."""
        out = []
        for role, label in self.roles.items():
            table = self._grants.get(role, {})
            scope = table.get((object_name, operation), table.get((ALL_OBJECTS, operation)))
            if scope and scope != "none":
                out.append(RoleGrant(role, label, scope))
        return out

    def scopes(self, object_name: str, operation: str) -> set[str]:
        if self.is_super:
            return {"all"}
        return {g.scope for g in self.grants(object_name, operation)}

    def field_access(self, obj: ObjectDef, registry: Registry) -> dict[str, str]:
        """Fields the user may not edit: name → hidden | read_only (most permissive role);
        worked out once per object definition (the Access goes when its rules change).

        A formula or roll-up computed from a field hidden from the user (on this object or
        through a lookup, at any depth) is hidden too: its value would tell the input."""
        if self.is_super:
            return {}
        known = self._field_access.get(obj.name)
        if known is None or known[0] is not obj:
            found = self._work_out_field_access(obj)
            for name, inputs in registry.inputs.get(obj.name, {}).items():
                if found.get(name) != "hidden" and any(
                        self._rule(o, f) == "hidden" for o, f in inputs):
                    found[name] = "hidden"
            known = self._field_access[obj.name] = (obj, found)
        return known[1]

    def _readers(self, object_name: str) -> set[str]:
        return {g.role for g in self.grants(object_name, "read")} or set(self.roles)

    def _rule(self, object_name: str, name: str, readers: set[str] | None = None) -> str:
        """The role rules' access to one field (the most permissive reading role's)."""
        return max((self._fields.get(role, {}).get(object_name, {}).get(name, "editable")
                    for role in (self._readers(object_name) if readers is None else readers)),
                   key=_FIELD_RANK.__getitem__, default="editable")

    def _work_out_field_access(self, obj: ObjectDef) -> dict[str, str]:
        readers = self._readers(obj.name)
        out: dict[str, str] = {}
        for name in obj.all_fields:
            best = self._rule(obj.name, name, readers)
            if best != "editable":
                out[name] = best
        return out


SUPER = Access(user_id=None, department_id=None, is_super=True)


def access_rows(source, where: Sequence[ColumnElement], columns: Sequence) -> CompoundSelect:
    """The user (found in ``source`` by ``where``) with each role, grant and field rule:
    one row each, the user's ``columns`` repeated, so a request learns who and what in one
    statement. Each half filters the user first, so both read only that user's rows."""
    ur, r = sys_user_role, sys_role
    g, f = sys_role_grant, sys_role_field
    grants = (select(*columns, r.c.name.label("role"), r.c.label.label("role_label"),
                     r.c.is_super, literal("grant").label("kind"), g.c.object,
                     g.c.operation.label("item"), g.c.scope.label("value"))
              .select_from(source.outerjoin(ur, ur.c.user_id == sys_user.c.id)
                           .outerjoin(r, r.c.id == ur.c.role_id)
                           .outerjoin(g, g.c.role_id == r.c.id)).where(*where))
    fields = (select(*columns, r.c.name, r.c.label, r.c.is_super, literal("field"),
                     f.c.object, f.c.field, f.c.access)
              .select_from(source.join(ur, ur.c.user_id == sys_user.c.id)
                           .join(r, r.c.id == ur.c.role_id)
                           .join(f, f.c.role_id == r.c.id)).where(*where))
    return grants.union_all(fields)


def access_from_rows(user_id: int, department_id: int | None, rows: Iterable) -> Access:
    rows = [r for r in rows if r.role is not None]
    access = Access(user_id, department_id, is_super=any(r.is_super for r in rows))
    for r in rows:
        access.roles[r.role] = r.role_label
        if r.object is None:
            continue
        if r.kind == "grant":
            access._grants.setdefault(r.role, {})[(r.object, r.item)] = r.value
        else:
            access._fields.setdefault(r.role, {}).setdefault(r.object, {})[r.item] = r.value
    return access


def load_access(session: Session, actor: Actor) -> Access:
    if actor.user_id is None:
        return SUPER
    return access_from_rows(actor.user_id, actor.department_id, session.execute(
        access_rows(sys_user, [sys_user.c.id == actor.user_id], [sys_user.c.id])))


def remember_access(session: Session, access: Access) -> None:
    session.info.setdefault(_CACHE_KEY, {})[access.user_id] = access


_CACHE_KEY = "metacrm.access"


def access_of(session: Session, actor: Actor) -> Access:
    """The actor's access, cached on the session (a request) and dropped by org changes."""
    if actor.user_id is None:
        return SUPER
    cache = session.info.setdefault(_CACHE_KEY, {})
    found = cache.get(actor.user_id)
    if found is None:
        found = cache[actor.user_id] = load_access(session, actor)
    return found


def forget_access(session: Session) -> None:
    session.info.pop(_CACHE_KEY, None)


# -- the condition ----------------------------------------------------------------------
def team_records(user_id: int, object_name: str, operation: str, today: dt.date) -> Select:
    """The records the user is a current member of, with enough access for the operation."""
    m = sys_team_member
    return select(m.c.record_id).where(
        m.c.user_id == user_id, m.c.object == object_name,
        m.c.access.in_(TEAM_ACCESS[operation]),
        or_(m.c.expires_on.is_(None), m.c.expires_on >= today))


def team_condition(table: Table, obj: ObjectDef, user_id: int, operation: str,
                   today: dt.date, ids: list[int] | None = None,
                   dialect: str = "") -> ColumnElement | None:
    """Membership as a list of ids (which the planners can estimate and index), or as a
    subquery when the user is on very many teams; None when it cannot apply."""
    if operation not in TEAM_ACCESS or "team" not in obj.features or ids == []:
        return None
    if ids is None:
        return table.c.id.in_(team_records(user_id, obj.name, operation, today))
    return ID_LISTS[dialect](table.c.id, "scope_team", ids)


def dimension_nodes(user_id: int, dimension: str) -> Select:
    """Ids of the dimension's nodes the user holds, with every node below them."""
    n, ud = sys_dimension_node, sys_user_dimension
    tree = select(n.c.id).join(ud, ud.c.node_id == n.c.id) \
        .where(ud.c.user_id == user_id, n.c.dimension == dimension) \
        .cte(f"dim_{dimension}", recursive=True, nesting=True)
    tree = tree.union(select(n.c.id).where(n.c.parent_id == tree.c.id))
    return select(tree.c.id)


def holds_root(user_id: int, dimension: str) -> ColumnElement:
    n, ud = sys_dimension_node, sys_user_dimension
    return exists().where(ud.c.node_id == n.c.id, ud.c.user_id == user_id,
                          n.c.dimension == dimension, n.c.parent_id.is_(None))


def dimension_condition(table: Table, f: FieldDef, user_id: int) -> ColumnElement:
    """The record's value lies in the user's part of the tree; the root sees everything."""
    return or_(holds_root(user_id, f.dimension_tree), table.c[f.column].in_(
        dimension_nodes(user_id, f.dimension_tree)))


@dataclass(frozen=True)
class Parts:
    """The pieces of one condition, kept apart so ``explain`` can test each."""

    grants: list[tuple[RoleGrant, ColumnElement]]
    dimensions: list[tuple[FieldDef, ColumnElement]]
    team: ColumnElement | None
    unrestricted: bool = False

    def role_part(self) -> ColumnElement:
        """What the roles grant, narrowed by the dimensions."""
        scopes = {g.scope: cond for g, cond in self.grants}
        role_part: ColumnElement = (true() if "all" in scopes
                                    else or_(*scopes.values()) if scopes else false())
        if scopes and self.dimensions:
            role_part = and_(role_part, *(c for _, c in self.dimensions))
        return role_part

    def condition(self) -> ColumnElement:
        if self.unrestricted:
            return true()
        if self.team is None:
            return self.role_part()
        return self.team if not self.grants else or_(self.role_part(), self.team)

    def pieces(self) -> list[ColumnElement]:
        """The condition as disjoint parts that together make it: counted one by one,
        each reads its own index (department, then the team's ids), where the OR of both
        would read the table."""
        if self.unrestricted or self.team is None or not self.grants:
            return [self.condition()]
        role = self.role_part()
        return [role, and_(self.team, not_(func.coalesce(role, false())))]


def governing(obj: ObjectDef, table: Table, operation: str) -> tuple[ObjectDef, Table, str]:
    """Lines (master-detail) have no permissions of their own: reading them is reading
    the parent, and any change to them is editing the parent."""
    master = obj.master_field
    if master is None:
        return obj, table, operation
    parent = table.metadata.tables[f"o_{master.target}"]
    return parent.info["object"], parent, "read" if operation in ("read", "export") else "edit"


def parts(session: Session, actor: Actor, obj: ObjectDef, table: Table, operation: str,
          today: dt.date | None = None, ordered: bool = False,
          inline_teams: bool = False) -> Parts:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    access = access_of(session, actor)
    if access.is_super:
        return Parts([], [], None, unrestricted=True)
    if obj.master_field is not None:
        parent_obj, parent_table, parent_op = governing(obj, table, operation)
        inner = parts(session, actor, parent_obj, parent_table, parent_op, today,
                      inline_teams=inline_teams)
        if inner.unrestricted:
            return inner
        within = table.c[obj.master_field.column].in_(
            select(parent_table.c.id).where(inner.condition()))
        return Parts([], [], within)
    found = access.grants(obj.name, operation)
    ctx = _scope_context(session, access, table, found, ordered)
    grants = [(g, SCOPES[g.scope].build(ctx)) for g in found]
    dims = [(f, dimension_condition(table, f, actor.uid)) for f in obj.dimension_fields]
    today = today or clock.today()
    team = team_condition(table, obj, actor.uid, operation, today,
                          None if inline_teams else access.teams(session, obj, operation,
                                                                 today), ctx.dialect)
    return Parts(grants, dims, team)


def _scope_context(session: Session, access: Access, table: Table, found: list[RoleGrant],
                   ordered: bool = False) -> ScopeContext:
    return ScopeContext(table, access.user_id, access.department_id,  # type: ignore[arg-type]
                        session.get_bind().dialect.name,
                        {g.scope: access.subtree(session, g.scope) for g in found
                         if g.scope in SUBTREES}, ordered)


def admits(session: Session, actor: Actor, obj: ObjectDef, table: Table, operation: str,
           rows: Sequence[Row]) -> bool | None:
    """Whether every row, with the values it is stored with, lies in the actor's scope
    for the operation: the test ``condition`` makes, on the same values, without a
    statement. None when it takes the database (a line's parent, dimension subtrees, too
    many team records to list)."""
    access = access_of(session, actor)
    if access.is_super:
        return True
    found = access.grants(obj.name, operation)
    if obj.master_field is not None or (found and obj.dimension_fields):
        return None
    team: list[int] = []
    if operation in TEAM_ACCESS and "team" in obj.features:
        listed = access.teams(session, obj, operation, clock.today())
        if listed is None:
            return None
        team = listed
    ctx = _scope_context(session, access, table, found)
    holds = [SCOPES[g.scope].holds for g in found]
    return all(any(h(ctx, row) for h in holds) or row.get("id") in team for row in rows)


def condition(session: Session, actor: Actor, obj: ObjectDef, table: Table,
              operation: str = "read", *, ordered: bool = False,
              inline_teams: bool = False) -> ColumnElement:
    """The one scope function: which records of ``obj`` the actor may ``operation``.

    ``ordered``: for a page read in an index's order (see ``Unindexed``); the records
    are the same either way. ``inline_teams``: team membership as a subquery rather
    than a list read first, for a check of a few ids (one statement, not two).
    """
    form = "ordered" if ordered else "inline" if inline_teams else "plain"
    return _built(session, actor, obj, table, operation, form)


def count_pieces(session: Session, actor: Actor, obj: ObjectDef, table: Table,
                 operation: str = "read") -> list[ColumnElement]:
    """The same records as ``condition``, as disjoint parts (see ``Parts.pieces``)."""
    return _built(session, actor, obj, table, operation, "pieces")


def _built(session: Session, actor: Actor, obj: ObjectDef, table: Table, operation: str,
           form: str):
    access = access_of(session, actor)
    if access.is_super:
        return [true()] if form == "pieces" else true()
    if obj.master_field is not None:  # follows the parent's scope; not worth a cache key
        built = parts(session, actor, obj, table, operation, inline_teams=form == "inline")
        return built.pieces() if form == "pieces" else built.condition()
    scopes = frozenset(access.scopes(obj.name, operation))
    today = clock.today()
    team = None if form == "inline" else access.teams(session, obj, operation, today)
    key = (table, obj.name, operation, form, actor.user_id, access.department_id, scopes,
           tuple(tuple(access.subtree(session, s)) for s in sorted(scopes & SUBTREES.keys())),
           None if team is None else tuple(team), today, session.get_bind().dialect.name)
    found = _CONDITIONS.get(key)
    if found is None:
        if len(_CONDITIONS) >= MAX_CACHED_CONDITIONS:
            _CONDITIONS.clear()
        built = parts(session, actor, obj, table, operation, ordered=form == "ordered",
                      inline_teams=form == "inline")
        found = _CONDITIONS[key] = built.pieces() if form == "pieces" else built.condition()
    return found


# Built conditions by everything they depend on (the table stands for the registry
# version): building one costs more than running it, and a user asks for the same few.
_CONDITIONS: dict[tuple, ColumnElement | list[ColumnElement]] = {}
MAX_CACHED_CONDITIONS = 4096


def granted(session: Session, actor: Actor, obj: ObjectDef, operation: str) -> bool:
    """Whether a role of the actor grants the operation on the object (menus, buttons)."""
    access = access_of(session, actor)
    return access.is_super or bool(access.grants(obj.name, operation))


def can(session: Session, actor: Actor, obj: ObjectDef, operation: str) -> bool:
    """Whether the operation could reach some record: through a role or a team."""
    return granted(session, actor, obj, operation) or (
        operation in TEAM_ACCESS and "team" in obj.features)


def record_operations(session: Session, actor: Actor, obj: ObjectDef, table: Table,
                      record_id: int, operations: Iterable[str]) -> dict[str, bool]:
    """Which operations the actor may do on one record: one statement, a flag each."""
    found = {op: parts(session, actor, obj, table, op) for op in operations}
    if all(p.unrestricted for p in found.values()):
        return dict.fromkeys(found, True)
    row = session.execute(select(*(p.condition().label(op) for op, p in found.items()))
                          .where(table.c.id == record_id)).first()
    return {op: bool(row and row._mapping[op]) for op in found}


def verb(operation: str) -> Label:
    return VERBS.get(operation) or Label(operation, operation)


def require(session: Session, actor: Actor, obj: ObjectDef, operation: str) -> None:
    """403 when no role grants the operation on the object (records are checked apart)."""
    if not can(session, actor, obj, operation):
        raise PermissionDenied(Message("you may not %(operation)s %(object)s records",
                                       operation=verb(operation),
                                       object=named(obj.name, obj.label)))


def field_access(session: Session, actor: Actor, obj: ObjectDef, registry: Registry
                 ) -> dict[str, str]:
    return access_of(session, actor).field_access(obj, registry)


def hidden_fields(session: Session, actor: Actor, obj: ObjectDef, registry: Registry
                  ) -> frozenset[str]:
    return frozenset(n for n, a in field_access(session, actor, obj, registry).items()
                     if a == "hidden")


def visible_fields(session: Session, actor: Actor, obj: ObjectDef, registry: Registry
                   ) -> dict[str, FieldDef]:
    hidden = hidden_fields(session, actor, obj, registry)
    if not hidden:
        return obj.queryable
    return {n: f for n, f in obj.queryable.items() if n not in hidden}


def hidden_by_some_role(session: Session, registry: Registry) -> dict[str, frozenset[str]]:
    """Per object, the fields some role hides and what is computed from them: what is
    not told to a caller nobody knows (one statement)."""
    f = sys_role_field
    raw = {(r.object, r.field) for r in session.execute(
        select(f.c.object, f.c.field).where(f.c.access == "hidden").distinct())}
    out: dict[str, set[str]] = {}
    for object_name, name in raw:
        out.setdefault(object_name, set()).add(name)
    for object_name, computed in registry.inputs.items():
        for name, inputs in computed.items():
            if inputs & raw:
                out.setdefault(object_name, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


def without_hidden(row: dict[str, Any], hidden: Iterable[str]) -> dict[str, Any]:
    hidden = set(hidden)
    if not hidden:
        return row
    return {k: v for k, v in row.items()
            if k not in hidden and k.removesuffix("__title") not in hidden}


# -- explain ----------------------------------------------------------------------------
@dataclass
class Verdict:
    """Why an operation on a record is allowed or not: the deciding rules, in words."""

    allowed: bool
    reasons: list[Message]
    found: bool = True


def explain(session: Session, registry, actor: Actor, obj: ObjectDef, record_id: int,
            operation: str) -> Verdict:
    """Evaluate each part of the condition on one record and say which rule decides."""
    table = registry.table(obj)
    p = parts(session, actor, obj, table, operation)
    if p.unrestricted:
        return Verdict(True, [Message("%(user)s is a super administrator", user=actor.username)])
    conds = [c for _, c in p.grants] + [c for _, c in p.dimensions] + (
        [p.team] if p.team is not None else [])
    row = session.execute(select(literal(True), *(c.label(f"c{i}") for i, c in enumerate(conds)))
                          .where(table.c.id == record_id, table.c.deleted.is_(False))).first()
    if row is None:
        return Verdict(False, [Message("there is no %(object)s record %(id)d",
                                       object=named(obj.name, obj.label), id=record_id)],
                       found=False)
    results = iter(bool(v) for v in row[1:])
    reasons: list[Message] = []
    role_ok = dims_ok = False
    for grant, _ in p.grants:
        ok = next(results)
        role_ok = role_ok or ok
        params = {"role": Label.of(grant.label, grant.role), "operation": verb(operation),
                  "scope": Label.of(SCOPES[grant.scope].label, grant.scope)}
        reasons.append(Message("role %(role)s grants %(operation)s within “%(scope)s”, "
                               "and the record is inside it", **params) if ok else
                       Message("role %(role)s grants %(operation)s within “%(scope)s”, "
                               "but the record is outside it", **params))
    if not p.grants:
        reasons.append(Message("no role of %(user)s grants %(operation)s on %(object)s",
                               user=actor.username, operation=verb(operation),
                               object=named(obj.name, obj.label)))
    dims_ok = True
    for f, _ in p.dimensions:
        ok = next(results)
        dims_ok = dims_ok and ok
        reasons.append(Message("dimension %(dimension)s: the record's value is one of the "
                               "user's values", dimension=f.dimension) if ok else
                       Message("dimension %(dimension)s: the record's value is not one of the "
                               "user's values", dimension=f.dimension))
    team_ok = False
    if p.team is not None:
        team_ok = next(results)
        reasons.append(Message("the user is a current team member of the record with enough "
                               "access") if team_ok else
                       Message("the user is not a current team member of the record with "
                               "enough access"))
    return Verdict((role_ok and dims_ok) or team_ok, reasons)
