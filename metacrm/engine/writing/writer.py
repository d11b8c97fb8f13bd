"""What one write of one object needs: its plan (statements built once per registry
version) and the writer that coerces, checks and reads for one actor.

The records service drives these; features reach a record through the service's entry
points, never through a writer of their own.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Select, Table, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metacrm.engine import audit
from metacrm.engine.access import dimensions, org, permissions
from metacrm.engine.actor import Actor
from metacrm.engine.errors import (
    PermissionDenied,
    RecordNotFound,
    ValidationFailed,
)
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_department, sys_dimension_node, sys_user
from metacrm.engine.writing import sequences
from metacrm.engine.writing.computing import Computer
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["Record", "WRITABLE_SYSTEM", "Writer", "raise_errors", "to_json"]

Record = dict[str, Any]
WRITABLE_SYSTEM = ("owner", "business_type")
IGNORED_INPUT = frozenset({"id", "version", "created_at", "created_by", "updated_at",
                           "updated_by"})



class ObjectPlan:
    """What writing one object needs, worked out once per registry version and reused.

    Building statements (and their cache keys) and walking the field list cost more than
    running an indexed statement, and the one-by-one write path runs for every record.
    """

    _cache: weakref.WeakKeyDictionary[Table, ObjectPlan] = weakref.WeakKeyDictionary()

    def __init__(self, obj: ObjectDef, table: Table):
        self.table = table
        self.insert = insert(table).returning(table.c.id)
        self.insert_plain = insert(table)
        self.sequence: str | None = None  # PostgreSQL: the id sequence, looked up once
        self.exists = select(table.c.id).where(table.c.id.in_(bindparam("ids", expanding=True)),
                                               table.c.deleted.is_(False))
        self.name = obj.name
        self._unique: dict[tuple[str, str | bool], Any] = {}  # (column, many) or insert
        self._audited: dict[tuple[frozenset[str], bool], Insert] = {}
        active = obj.active_fields
        self.defaults = {f.name: f.kind.coerce(f.default, f) for f in active
                         if f.default is not None and not f.kind.generated}
        if obj.business_types:
            self.defaults["business_type"] = obj.business_types[0].name
        # A new record has no children: its counts and sums start at zero.
        self.defaults.update({f.name: 0 for f in active if f.rollup and
                              f.rollup.function in ("count", "sum")})
        self.required = tuple(f.name for f in active if f.required and not f.kind.generated)
        # Each business type's required fields beyond the fields' own.
        fillable = {f.name for f in active if f.stored and not f.kind.generated}
        self.type_required = {bt.name: tuple(n for n in bt.required if n in fillable
                                             and n not in self.required)
                              for bt in obj.business_types if bt.required}
        self.unique = tuple(f for f in active if f.unique)
        self.references = tuple(f for f in active if f.kind.references)
        self.numbered = tuple((f, f.pattern) for f in active if f.kind.generated and f.pattern)
        self.json = {f.name: f.kind.to_json for f in obj.queryable.values()}
        self.inputs = {f.name: (f, f.kind.coerce) for f in obj.queryable.values()}
        self.picklist_limits = any(bt.picklists for bt in obj.business_types)
        self.dependent = tuple((f, f.depends_on) for f in active if f.depends_on)
        # Fields without a column (line items): a feature's hook writes their values.
        self.unstored = frozenset(f.name for f in active if not f.stored)

    def insert_rows(self, conn, rows: list[dict[str, Any]]) -> list[int]:
        """Insert a batch with one plain executemany; returns the new ids in row order."""
        return _BATCH_INSERT[conn.dialect.name](self, conn, rows)

    @classmethod
    def of(cls, obj: ObjectDef, table: Table) -> ObjectPlan:
        found = cls._cache.get(table)
        if found is None:
            found = cls._cache[table] = cls(obj, table)
        return found

    def insert_new(self, dialect: str):
        """INSERT … ON CONFLICT DO NOTHING: the unique indexes judge, in one statement."""
        stmt = self._unique.get(("insert", dialect))
        if stmt is None:
            module = postgresql if dialect == "postgresql" else sqlite
            stmt = module.insert(self.table).on_conflict_do_nothing().returning(self.table.c.id)
            self._unique[("insert", dialect)] = stmt
        return stmt

    def insert_audited(self, columns: frozenset[str], unique: bool) -> Insert:
        """PostgreSQL: the INSERT of a record with these columns and its audit entry, in
        one statement; with ``unique``, a taken value inserts nothing (no id back)."""
        key = (columns, unique)
        stmt = self._audited.get(key)
        if stmt is None:
            if len(self._audited) >= MAX_AUDITED_SHAPES:
                self._audited.clear()
            add = postgresql.insert(self.table).values({c: bindparam(c) for c in columns})
            if unique:
                add = add.on_conflict_do_nothing()
            stmt = self._audited[key] = audit.with_create_entry(
                add.returning(self.table.c.id), self.name)
        return stmt

    def holder(self, column: str, many: bool) -> Select:
        """Finds a record already holding one of the values (one value: no IN list)."""
        stmt = self._unique.get((column, many))
        if stmt is None:
            t = self.table
            match = (t.c[column].in_(bindparam("values", expanding=True)) if many
                     else t.c[column] == bindparam("value"))
            stmt = self._unique[(column, many)] = (
                select(t.c.id, t.c[column], t.c.deleted)
                .where(match, t.c.id != bindparam("exclude")).limit(1))
        return stmt

    def created(self, row: Mapping[str, Any]) -> dict[str, list]:
        """The audit diff of a new record: every value it was given, from nothing."""
        convert = self.json
        return {k: [None, convert[k](v)] for k, v in row.items()
                if v is not None and k in convert}

    def to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        convert = self.json
        return {k: (None if v is None else convert[k](v)) for k, v in values.items()
                if k in convert}


MAX_AUDITED_SHAPES = 64  # sets of columns given: a form sends few, an import one


def _sqlite_batch(plan: ObjectPlan, conn, rows: list[dict[str, Any]]) -> list[int]:
    # SQLAlchemy keeps RETURNING in order on SQLite only by inserting row by row. In our
    # write transaction SQLite gives a batch contiguous rowids (each one above the
    # largest), so the last one tells them all.
    conn.execute(plan.insert_plain, rows)
    last = conn.execute(_LAST_ROWID).scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


def _postgres_batch(plan: ObjectPlan, conn, rows: list[dict[str, Any]]) -> list[int]:
    # Reserve the ids from the table's own sequence in one statement, then insert them:
    # a plain executemany is pipelined by psycopg, while a multi-row RETURNING statement
    # of a thousand rows costs more to parse than to run.
    if plan.sequence is None:
        plan.sequence = conn.execute(select(func.pg_get_serial_sequence(
            plan.table.name, "id"))).scalar_one()
    ids = sorted(conn.execute(select(func.nextval(plan.sequence)).select_from(
        func.generate_series(1, len(rows)))).scalars())
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    conn.execute(plan.insert_plain, rows)
    return ids


_BATCH_INSERT = {"sqlite": _sqlite_batch, "postgresql": _postgres_batch}
_LAST_ROWID = select(func.last_insert_rowid())
# Keyed by what a field's id points at (FieldType.references).
_EXISTS: dict[str | None, Select] = {
    "user": select(sys_user.c.id).where(sys_user.c.id.in_(bindparam("ids", expanding=True)),
                                        sys_user.c.active.is_(True)),
    "department": select(sys_department.c.id).where(
        sys_department.c.id.in_(bindparam("ids", expanding=True))),
    "dimension": select(sys_dimension_node.c.id).where(
        sys_dimension_node.c.id.in_(bindparam("ids", expanding=True)),
        sys_dimension_node.c.dimension == bindparam("dimension")),
}
_DEPARTMENTS = select(sys_user.c.id, sys_user.c.department_id).where(
    sys_user.c.id.in_(bindparam("ids", expanding=True)))
# What a reference to a missing row says, by what the field references (written out so
# the translation catalogue sees each template).
_MISSING: dict[str | None, Callable[[int], Message]] = {
    "user": lambda i: Message("no active user with id %(id)d", id=i),
    "department": lambda i: Message("no department with id %(id)d", id=i),
    "dimension": lambda i: Message("no node with id %(id)d in this dimension", id=i),
}


def to_json(f: FieldDef, value: Any) -> Any:
    return None if value is None else f.kind.to_json(value)


class Writer:
    """Validation and writes for one object of one registry version, for one actor."""

    def __init__(self, session: Session, registry: Registry, obj: ObjectDef | str,
                 actor: Actor):
        self.session = session
        self.registry = registry
        self.obj = registry.object(obj) if isinstance(obj, str) else obj
        self.table: Table = registry.table(self.obj)
        self.plan = ObjectPlan.of(self.obj, self.table)
        self.conn = session.connection()
        self.actor = actor
        self.access = permissions.access_of(session, actor)
        self.field_rules = self.access.field_access(self.obj, registry)
        self.hidden = frozenset(n for n, a in self.field_rules.items() if a == "hidden")
        self.computer = Computer(self.conn, registry, self.obj)

    def require(self, operation: str) -> None:
        """The object-level check (a line's is its parent's)."""
        governing, _, governing_op = permissions.governing(self.obj, self.table, operation)
        permissions.require(self.session, self.actor, governing, governing_op)

    def compute(self, rows: list[dict[str, Any]], given: Sequence[Collection[str]] | None,
                batch: bool) -> None:
        """Defaults (on create, for fields not given), formulas, required fields and
        validation rules, for a batch; raises on the first row with a problem."""
        names = self.computer.names(rows) if self.computer.active else [{}] * len(rows)
        for i, (row, row_names) in enumerate(zip(rows, names, strict=True)):
            errors: dict[str, str] = {}
            if self.computer.active:
                if given is not None:
                    self.computer.fill_defaults(row, row_names, given[i], errors)
                self.computer.fill_formulas(row, row_names, errors)
            if given is not None:
                self.check_required(row, errors)
            if self.computer.active and not errors:
                self.computer.check_rules(row_names, errors)
            raise_errors(errors, row=i if batch else None)

    def allowed(self, operation: str):
        """The permission condition, or None when the actor is unrestricted."""
        if self.access.is_super:
            return None
        parts = permissions.parts(self.session, self.actor, self.obj, self.table, operation)
        return None if parts.unrestricted else parts.condition()

    def check_field_rules(self, values: Mapping[str, Any], before: Mapping[str, Any],
                          errors: dict[str, str]) -> None:
        """Read-only fields keep their value (hidden ones never get past ``coerce``)."""
        for name, value in values.items():
            if self.field_rules.get(name) == "read_only" and value != before.get(name):
                errors[name] = Message("is read-only")

    def in_scope(self, ids: list[int], operation: str,
                 rows: Sequence[Mapping[str, Any]] = ()) -> bool:
        """Whether the records lie in the actor's scope; ``rows``: their stored values,
        when the write knows them all (then most scopes need no statement)."""
        if rows:
            found = permissions.admits(self.session, self.actor, self.obj, self.table,
                                       operation, rows)
            if found is not None:
                return found
        condition = self.allowed(operation)
        if condition is None:
            return True
        inside = self.conn.execute(select(func.count()).select_from(self.table).where(
            self.table.c.id.in_(ids), condition)).scalar_one()
        return inside == len(ids)

    def visible(self, row: Record) -> Record:
        return permissions.without_hidden(row, self.hidden)

    # -- coercion -----------------------------------------------------------------
    def split(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The values of stored fields, and those of fields without a column, which a
        feature's hook takes (``WriteContext.unstored``)."""
        if not self.plan.unstored:
            return dict(values), {}
        own: dict[str, Any] = {}
        unstored: dict[str, Any] = {}
        for name, value in values.items():
            (unstored if name in self.plan.unstored else own)[name] = value
        return own, unstored

    def coerce(self, values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        inputs = self.plan.inputs
        for name, raw in values.items():
            entry = inputs.get(name)
            # A hidden field is refused before its value is looked at, as if it did not
            # exist: a refusal that depended on the value would tell the value.
            if entry is None or name in self.hidden:
                errors[str(name)[:63]] = Message("is not a field of this object")
                continue
            f, coerce = entry
            if f.system and name not in WRITABLE_SYSTEM:
                if name not in IGNORED_INPUT:
                    errors[name] = Message("is read-only")
                continue
            if raw is None or raw == "" or raw == []:
                out[name] = None
                continue
            try:
                out[name] = coerce(raw, f)
            except InvalidValue as exc:
                errors[name] = exc.message
        bt = out.get("business_type")
        if bt is not None and self.obj.business_type(bt) is None:
            errors["business_type"] = Message("'%(value)s' is not a business type of this object",
                                              value=str(bt)[:50])
        return out

    def defaults(self, actor: Actor) -> dict[str, Any]:
        out = dict(self.plan.defaults)
        if actor.user_id is not None:
            out["owner"] = actor.user_id
        out.update(dimensions.default_values(self.session, actor.user_id, self.obj))
        return out

    def set_departments(self, rows: list[dict[str, Any]]) -> None:
        """A record belongs to its owner's department (department scopes read it); the
        acting user's is known, other owners' are read in one statement."""
        known = {self.actor.user_id: self.actor.department_id}
        others = {r.get("owner") for r in rows} - known.keys() - {None}
        if others:
            known.update(self.conn.execute(_DEPARTMENTS, {"ids": list(others)}).all())
        for row in rows:
            row["department"] = known.get(row.get("owner"))

    def check_required(self, row: Mapping[str, Any], errors: dict[str, str],
                       only: Iterable[str] | None = None) -> None:
        """The fields' own required ones, and the record's business type's. ``only``: the
        changed fields (a changed business type brings in all of its own)."""
        by_type = self.plan.type_required.get(row.get("business_type") or "", ())
        names = [*self.plan.required, *by_type]
        if only is not None:
            only = set(only)
            names = [n for n in names if n in only or ("business_type" in only
                                                       and n in by_type)]
        for name in names:
            if row.get(name) is None:
                errors.setdefault(name, Message("is required"))

    def check_offered(self, values: Mapping[str, Any], errors: dict[str, str],
                      current: Mapping[str, Any] | None = None) -> None:
        """A deactivated option stays on the records holding it but is not chosen anew."""
        current = current or {}
        for name, value in values.items():
            f = self.obj.all_fields.get(name)
            if f is None or not f.kind.options or value is None:
                continue
            held = current.get(name)
            held = set(held) if isinstance(held, list) else {held}
            for item in value if isinstance(value, list) else [value]:
                option = f.option(item)
                if option is not None and not option.active and item not in held:
                    errors.setdefault(name, Message("'%(value)s' is no longer offered",
                                                    value=item))

    def check_dependent(self, row: Mapping[str, Any], errors: dict[str, str]) -> None:
        """A dependent option must be offered under the controlling field's value."""
        for f, controlling in self.plan.dependent:
            value, controller = row.get(f.name), row.get(controlling)
            chosen = value if isinstance(value, list) else [value] if value is not None else []
            for item in chosen:
                option = f.option(item)
                if option and option.parents and controller not in option.parents:
                    errors.setdefault(f.name, Message(
                        "'%(value)s' is not available when %(field)s is '%(controller)s'",
                        value=item, field=controlling, controller=controller or ""))

    def check_type_offered(self, row: Mapping[str, Any], errors: dict[str, str]) -> None:
        """A business type limited to some departments is for their users (and admins)."""
        bt = self.obj.business_type(row.get("business_type") or "")
        if bt is None or not bt.departments or self.actor.is_admin:
            return
        if not bt.offered_to(org.names_upward(self.session, self.actor.department_id)):
            errors.setdefault("business_type", Message(
                "business type %(type)s is not offered to your department", type=bt.name))

    def check_business_type(self, row: Mapping[str, Any], errors: dict[str, str]) -> None:
        self.check_dependent(row, errors)
        if not self.plan.picklist_limits:
            return
        bt = self.obj.business_type(row.get("business_type") or "")
        if bt is None:
            return
        for name, allowed in bt.picklists.items():
            value = row.get(name)
            if value is not None and name not in errors and value not in allowed:
                errors[name] = Message("'%(value)s' is not available for business type %(type)s",
                                       value=value, type=bt.name)

    # -- checks that need the database ------------------------------------------------
    def check_references(self, rows: Sequence[Mapping[str, Any]], errors: dict[str, str],
                         actor: Actor) -> None:
        for f in self.plan.references:
            if f.name in errors:
                continue
            wanted = {r[f.name] for r in rows if r.get(f.name) is not None}
            if wanted:
                self._check_exists(f, wanted, errors)
        # The acting user is known to be active; only other owners need a look.
        owners = {r["owner"] for r in rows if r.get("owner")} - {actor.user_id}
        if owners and "owner" not in errors:
            self._check_exists(self.obj.queryable["owner"], owners, errors)

    def _check_exists(self, f: FieldDef, ids: set[int], errors: dict[str, str]) -> None:
        """One statement per field and batch. A record is chosen only among those the
        actor may read: a record out of scope and a missing one are refused alike, so the
        answer tells nothing of what exists (a line's parent is checked by its own write)."""
        scoped = False
        if f.kind.references == "target":
            target = self.registry.objects[f.target_object]
            table = self.registry.table(target)
            stmt = ObjectPlan.of(target, table).exists
            if not f.master and not self.access.is_super:
                stmt = stmt.where(permissions.condition(self.session, self.actor, target,
                                                        table, "read", inline_teams=True))
                scoped = True
        else:
            stmt = _EXISTS[f.kind.references]
        params: dict[str, Any] = {"ids": list(ids)}
        if f.kind.references == "dimension":
            params["dimension"] = f.dimension
        found = set(self.conn.execute(stmt, params).scalars())
        missing = sorted(ids - found)
        if not missing:
            return
        if f.kind.references != "target":
            errors[f.name] = _MISSING[f.kind.references](missing[0])
            return
        target_name = named(f.target_object, self.registry.objects[f.target_object].label)
        errors[f.name] = (
            Message("no %(object)s record with id %(id)d that you may see", id=missing[0],
                    object=target_name) if scoped
            else Message("no %(object)s record with id %(id)d", id=missing[0],
                         object=target_name))

    def check_unique(self, rows: Sequence[Mapping[str, Any]], errors: dict[str, str],
                     exclude_id: int | None = None) -> None:
        for f in self.plan.unique:
            if f.name in errors:
                continue
            values = [r[f.name] for r in rows if r.get(f.name) is not None]
            if not values:
                continue
            if len(set(values)) < len(values):
                errors[f.name] = Message("the same value appears more than once in this batch")
                continue
            many = len(values) > 1
            params = {"values": values} if many else {"value": values[0]}
            clash = self.conn.execute(self.plan.holder(f.column, many),
                                      {**params, "exclude": exclude_id or 0}).first()
            if clash:
                value, holder = str(clash[1])[:100], clash.id
                errors[f.name] = (
                    Message("'%(value)s' is already used by record %(id)d in the recycle bin",
                            value=value, id=holder) if clash.deleted
                    else Message("'%(value)s' is already used by record %(id)d", value=value,
                                 id=holder))

    def number(self, rows: list[dict[str, Any]], today: dt.date) -> None:
        for f, pattern in self.plan.numbered:
            key = f"{self.obj.key}.{f.key}"
            for row, value in zip(rows, sequences.next_numbers(
                    self.session, key, pattern, len(rows), today), strict=True):
                row[f.name] = value

    # -- reading ----------------------------------------------------------------------
    def columns(self):
        t = self.table
        names = [f.name for f in self.obj.queryable.values()]
        return [t.c[n] for n in names]

    def fetch(self, record_id: int, *, deleted: bool = False, for_update: bool = False,
              need: tuple[str, ...] = ()) -> Record:
        """The record if the actor may read it (else 404) and do each of ``need`` (else 403).

        One statement: the read scope is in the WHERE, each other operation's scope is a
        boolean column, so "not found" and "not allowed" are told apart without a leak.
        """
        read = self.allowed("read")
        flags = {op: self.allowed(op) for op in need}
        stmt = select(*self.columns(), *(c.label(f"_may_{op}") for op, c in flags.items()
                                         if c is not None))
        stmt = stmt.where(self.table.c.id == record_id, self.table.c.deleted.is_(deleted))
        if read is not None:
            stmt = stmt.where(read)
        if for_update and self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=self.table)
        row = self.conn.execute(stmt).first()
        if row is None:
            raise RecordNotFound(f"{self.obj.name} {record_id} not found")
        found = dict(row._mapping)
        for op, c in flags.items():
            if c is not None and not found.pop(f"_may_{op}"):
                raise PermissionDenied(Message("you may not %(operation)s this record",
                                               operation=permissions.verb(op)))
        return found

    def audit_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.plan.to_json(values)


def raise_errors(errors: dict[str, str], row: int | None = None) -> None:
    if errors:
        raise ValidationFailed(errors, row=row)

