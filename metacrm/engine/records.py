"""The records service: the only write path for object records.

Coercion and validation, defaults, auto-numbers, unique and lookup checks, system
columns, optimistic locking, the recycle bin and the audit log all happen here, so
the API, the web forms, imports and jobs get the same behaviour.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metacrm.engine import (
    approvals,
    audit,
    dimensions,
    lines,
    lookup_filters,
    org,
    permissions,
    rollups,
    sequences,
    stages,
)
from metacrm.engine.actor import Actor
from metacrm.engine.computing import Computer
from metacrm.engine.errors import (
    PermissionDenied,
    RecordNotFound,
    StaleVersion,
    ValidationFailed,
)
from metacrm.engine.registry import Registry
from metacrm.engine.systables import sys_department, sys_dimension_node, sys_user
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef

Record = dict[str, Any]
WRITABLE_SYSTEM = ("owner", "business_type")
IGNORED_INPUT = frozenset({"id", "version", "created_at", "created_by", "updated_at",
                           "updated_by"})


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        self._unique: dict[tuple[str, bool], Select] = {}
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
        self.numbered = tuple(f for f in active if f.kind.generated and f.pattern)
        self.json = {f.name: f.kind.to_json for f in obj.queryable.values()}
        self.inputs = {f.name: (f, f.kind.coerce) for f in obj.queryable.values()}
        self.picklist_limits = any(bt.picklists for bt in obj.business_types)
        self.dependent = tuple(f for f in active if f.depends_on)

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
_EXISTS = {
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
_MISSING = {"user": "no active user with id %(id)d",
            "department": "no department with id %(id)d",
            "dimension": "no node with id %(id)d in this dimension"}


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
        self.field_rules = self.access.field_access(self.obj)
        self.hidden = frozenset(n for n, a in self.field_rules.items() if a == "hidden")
        self.computer = Computer(self.conn, registry, self.obj)

    def require(self, operation: str) -> None:
        """The object-level check (a line's is its parent's)."""
        governing, _, governing_op = permissions.governing(self.obj, self.table, operation)
        permissions.require(self.session, self.actor, governing, governing_op)

    def compute(self, rows: list[dict[str, Any]], given: Sequence[Iterable[str]] | None,
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
            _raise(errors, row=i if batch else None)

    def allowed(self, operation: str):
        """The permission condition, or None when the actor is unrestricted."""
        if self.access.is_super:
            return None
        parts = permissions.parts(self.session, self.actor, self.obj, self.table, operation)
        return None if parts.unrestricted else parts.condition()

    def check_field_rules(self, values: Mapping[str, Any], before: Mapping[str, Any],
                          errors: dict[str, str]) -> None:
        """Hidden fields do not exist for the actor; read-only ones keep their value."""
        for name, value in values.items():
            rule = self.field_rules.get(name)
            if rule == "hidden":
                errors[name] = Message("is not a field of this object")
            elif rule == "read_only" and value != before.get(name):
                errors[name] = Message("is read-only")

    def in_scope(self, ids: list[int], operation: str) -> bool:
        condition = self.allowed(operation)
        if condition is None:
            return True
        found = self.conn.execute(select(func.count()).select_from(self.table).where(
            self.table.c.id.in_(ids), condition)).scalar_one()
        return found == len(ids)

    def visible(self, row: Record) -> Record:
        return permissions.without_hidden(row, self.hidden)

    # -- coercion -----------------------------------------------------------------
    def coerce(self, values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        inputs = self.plan.inputs
        for name, raw in values.items():
            entry = inputs.get(name)
            if entry is None:
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
        for f in self.plan.dependent:
            value, controller = row.get(f.name), row.get(f.depends_on)
            chosen = value if isinstance(value, list) else [value] if value is not None else []
            for item in chosen:
                option = f.option(item)
                if option and option.parents and controller not in option.parents:
                    errors.setdefault(f.name, Message(
                        "'%(value)s' is not available when %(field)s is '%(controller)s'",
                        value=item, field=f.depends_on, controller=controller or ""))

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
        if f.kind.references == "target":
            target = self.registry.objects[f.target]
            stmt = ObjectPlan.of(target, self.registry.table(target)).exists
        else:
            stmt = _EXISTS[f.kind.references]
        params = {"ids": list(ids)}
        if f.kind.references == "dimension":
            params["dimension"] = f.dimension
        found = set(self.conn.execute(stmt, params).scalars())
        missing = sorted(ids - found)
        if missing:
            errors[f.name] = (
                Message("no %(object)s record with id %(id)d", object=f.target, id=missing[0])
                if f.kind.references == "target"
                else Message(_MISSING[f.kind.references], id=missing[0]))

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
        for f in self.plan.numbered:
            key = f"{self.obj.key}.{f.key}"
            for row, value in zip(rows, sequences.next_numbers(
                    self.session, key, f.pattern, len(rows), today), strict=True):
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
                                               operation=op))
        return found

    def audit_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.plan.to_json(values)


def _raise(errors: dict[str, str], row: int | None = None) -> None:
    if errors:
        raise ValidationFailed(errors, row=row)


def create(session: Session, registry: Registry, obj: ObjectDef | str, values: Mapping[str, Any],
           *, actor: Actor) -> Record:
    """Validate and insert one record; returns it as stored."""
    return create_many(session, registry, obj, [values], actor=actor)[0]


def create_many(session: Session, registry: Registry, obj: ObjectDef | str,
                batch: Sequence[Mapping[str, Any]], *, actor: Actor,
                as_lines: bool = False) -> list[Record]:
    """Validate and insert records with one statement per check, not per record.

    All or nothing: the first invalid row raises ValidationFailed naming its index.
    ``as_lines``: the records are lines written with their parent, whose permission
    was checked.
    """
    w = Writer(session, registry, obj, actor)
    if not as_lines:
        w.require("create")
    defaults = w.defaults(actor)
    stamp = now()
    stamps = {"created_at": stamp, "updated_at": stamp, "created_by": actor.user_id,
              "updated_by": actor.user_id, "version": 1, "deleted": False}
    rows: list[dict[str, Any]] = []
    given: list[set[str]] = []
    submitted_lines: list[lines.Lines] = []
    many = len(batch) > 1
    for i, values in enumerate(batch):
        errors: dict[str, str] = {}
        own, found_lines = lines.split(w.obj, values, errors)
        row = {**defaults}
        coerced = w.coerce(own, errors)
        w.check_offered(coerced, errors)
        w.check_field_rules({k: v for k, v in coerced.items() if v is not None}, defaults,
                            errors)  # a read-only field may be sent with its default
        for name, value in coerced.items():
            if value is not None or name not in WRITABLE_SYSTEM:  # None keeps the default
                row[name] = value
        w.check_business_type(row, errors)
        w.check_type_offered(row, errors)
        _raise(errors, row=i if many else None)
        rows.append(row)
        given.append(set(coerced))
        submitted_lines.append(found_lines)
    w.compute(rows, given, many)
    errors = {}
    w.check_references(rows, errors, actor)
    lookup_filters.check(w.conn, registry, w.obj, rows, errors)
    if len(rows) > 1:
        w.check_unique(rows, errors)
    _raise(errors)
    w.number(rows, stamp.astimezone().date())
    w.set_departments(rows)
    if not as_lines and registry.processes_of(w.obj.name):
        stages.check_new(session, registry, w.obj, rows)
    changes = [w.plan.created(row) for row in rows]
    for row in rows:
        row.update(stamps)
    _insert(w, rows)
    ids = [row["id"] for row in rows]
    if not as_lines and not w.in_scope(ids, "create"):
        raise PermissionDenied(Message("you may not create %(object)s records with this owner "
                                       "or these values", object=w.obj.name))
    for row, change in zip(rows, changes, strict=True):
        audit.record(session, w.obj.name, row["id"], "create", actor.user_id, stamp, change)
    if not as_lines:
        stages.started(session, registry, w.obj, rows, actor)
    if any(submitted_lines):
        lines.create(session, registry, w.obj, ids, submitted_lines, actor)
        rows = _reread(w, ids, rows)
    rollups.refresh(w.conn, registry, rollups.parents_of(registry, w.obj, rows))
    return [w.visible(row) for row in rows]


def _reread(w: Writer, ids: list[int], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as stored now that their lines' roll-ups are in."""
    computed = [w.table.c[f.name] for f in w.obj.active_fields if f.computed]
    if not computed:
        return rows
    found = {r.id: r._mapping for r in w.conn.execute(
        select(w.table.c.id, *computed).where(w.table.c.id.in_(ids)))}
    return [{**row, **{c.name: found[row["id"]][c.name] for c in computed}} for row in rows]


def _insert(w: Writer, rows: list[dict[str, Any]]) -> None:
    if len(rows) == 1:
        _insert_one(w, rows[0])
        return
    # executemany needs every row to name the same columns.
    columns = set().union(*rows)
    for row in rows:
        for c in columns - row.keys():
            row[c] = None
    ids = w.plan.insert_rows(w.conn, rows)
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id


def _insert_one(w: Writer, row: dict[str, Any]) -> None:
    """One statement: the unique indexes refuse a taken value, then we say which."""
    if not w.plan.unique:
        row["id"] = w.conn.execute(w.plan.insert, row).scalar_one()
        return
    new_id = w.conn.execute(w.plan.insert_new(w.conn.dialect.name), row).scalar()
    if new_id is None:
        errors: dict[str, str] = {}
        w.check_unique([row], errors)
        raise ValidationFailed(errors or {f.name: Message("this value is already used")
                                          for f in w.plan.unique})
    row["id"] = new_id


def get(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
        *, actor: Actor) -> Record:
    w = Writer(session, registry, obj, actor)
    return w.visible(w.fetch(record_id))


def update_record(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
                  values: Mapping[str, Any], *, actor: Actor,
                  version: int | None = None, as_lines: bool = False,
                  stage_move: bool = False, writer: Writer | None = None,
                  current: Record | None = None) -> Record:
    """Change some fields; with ``version`` given, a stale one raises StaleVersion.

    A record in a pending approval is locked. The stage and win-rate fields of a stage
    process change only with ``stage_move`` (from ``stages``, after its checks), which
    passes its ``writer`` and the ``current`` record it fetched for editing and found
    unlocked, so they are not read again."""
    w = writer or Writer(session, registry, obj, actor)
    if current is None:
        wants_owner = "owner" in values and values["owner"] not in (None, "")
        current = w.fetch(record_id, for_update=True,
                          need=("edit", "transfer") if wants_owner else ("edit",))
        approvals.refuse_if_locked(session, registry, w.obj, record_id)
    if version is not None and version != current["version"]:
        raise StaleVersion(f"{w.obj.name} {record_id} was changed by someone else "
                           f"(version {current['version']}, not {version})",
                           current_version=current["version"])
    errors: dict[str, str] = {}
    own, submitted_lines = lines.split(w.obj, values, errors)
    changes = {k: v for k, v in w.coerce(own, errors).items() if current.get(k) != v}
    if not stage_move:
        for name in stages.managed_fields(registry, w.obj) & changes.keys():
            errors[name] = Message("changes by moving the record along its stage path")
    w.check_offered(changes, errors, current)
    w.check_field_rules(changes, current, errors)
    merged = {**current, **changes}
    w.check_required(merged, errors, only=changes)
    w.check_business_type(merged, errors)
    if "business_type" in changes:
        w.check_type_offered(merged, errors)
        if registry.processes_of(w.obj.name):
            stages.check_type_change(session, registry, w.obj, merged, errors)
    _raise(errors)
    if not changes and not submitted_lines:
        return current
    if changes:
        w.compute([merged], None, False)
        changes.update({f.name: merged[f.name] for f, _ in w.computer.logic.formulas
                        if merged[f.name] != current.get(f.name)})
    w.check_references([changes], errors, actor)
    w.check_unique([changes], errors, exclude_id=record_id)
    if changes:
        lookup_filters.check(w.conn, registry, w.obj, [merged], errors)
    _raise(errors)
    stamp = now()
    table = w.table
    written = dict(changes)
    if "owner" in changes:
        w.set_departments([written])  # the department follows the new owner
    result = w.conn.execute(
        update(table).where(table.c.id == record_id, table.c.version == current["version"],
                            table.c.deleted.is_(False))
        .values(**written, updated_at=stamp, updated_by=actor.user_id,
                version=table.c.version + 1))
    if result.rowcount != 1:
        raise StaleVersion(f"{w.obj.name} {record_id} was changed by someone else")
    # The record was in the edit scope; only its owner or dimension fields can move it out
    # (a new owner was checked against the transfer scope when it was fetched).
    scope_fields = {f.name for f in w.obj.dimension_fields}
    if "owner" not in changes and not as_lines and scope_fields & changes.keys() \
            and not w.in_scope([record_id], "edit"):
        raise PermissionDenied(Message("after this change the record would be outside what "
                                       "you may edit"))
    before, after = w.audit_values({k: current.get(k) for k in changes}), w.audit_values(changes)
    if changes:
        audit.record(session, w.obj.name, record_id, "update", actor.user_id, stamp,
                     {k: [before[k], after[k]] for k in changes})
    if not as_lines:
        rollups.after_update(w.conn, registry, w.obj, record_id, set(changes), current,
                             merged)
        if changes and not stage_move:
            approvals.after_update(session, registry, w.obj, record_id, set(changes),
                                   {**merged, **written}, actor)
    if submitted_lines and lines.replace(session, registry, w.obj, record_id, submitted_lines,
                                         actor):
        rollups.refresh(w.conn, registry, {w.obj.name: {record_id}})
        return w.visible(w.fetch(record_id))
    return w.visible({**merged, **written, "updated_at": stamp, "updated_by": actor.user_id,
                      "version": current["version"] + 1})


def _set_deleted(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
                 deleted: bool, actor: Actor, version: int | None, as_lines: bool = False
                 ) -> None:
    w = Writer(session, registry, obj, actor)
    current = w.fetch(record_id, deleted=not deleted, need=("delete",) if not as_lines else ())
    approvals.refuse_if_locked(session, registry, w.obj, record_id)
    table = w.table
    stamp = now()
    where = [table.c.id == record_id, table.c.deleted.is_(not deleted)]
    if version is not None:
        where.append(table.c.version == version)
    # Restoring brings back the lines deleted with the record: those of its deleted_at.
    deleted_at = w.conn.execute(select(table.c.deleted_at).where(
        table.c.id == record_id)).scalar() if not deleted and w.obj.line_fields else None
    result = w.conn.execute(update(table).where(*where).values(
        deleted=deleted, deleted_at=stamp if deleted else None,
        deleted_by=actor.user_id if deleted else None, version=table.c.version + 1))
    if result.rowcount != 1:
        raise StaleVersion(f"{w.obj.name} {record_id} was changed by someone else")
    audit.record(session, w.obj.name, record_id, "delete" if deleted else "restore",
                 actor.user_id, stamp, {})
    lines.cascade_delete(session, registry, w.obj, record_id, deleted, stamp, actor,
                         parent_deleted_at=deleted_at)
    if not as_lines:
        rollups.refresh(w.conn, registry, rollups.parents_of(registry, w.obj, [current]))


def delete(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
           actor: Actor, version: int | None = None, as_lines: bool = False) -> None:
    """Soft delete: the record (and its lines) move to the recycle bin."""
    _set_deleted(session, registry, obj, record_id, True, actor, version, as_lines)


def restore(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
            actor: Actor) -> Record:
    _set_deleted(session, registry, obj, record_id, False, actor, None)
    return get(session, registry, obj, record_id, actor=actor)


def history(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
            actor: Actor) -> list[dict]:
    w = Writer(session, registry, obj, actor)
    condition = w.allowed("read")
    stmt = select(func.count()).select_from(w.table).where(w.table.c.id == record_id)
    exists = w.conn.execute(stmt if condition is None else stmt.where(condition)).scalar()
    if not exists:
        raise RecordNotFound(f"{w.obj.name} {record_id} not found")
    entries = audit.history(session, w.obj.name, record_id)
    if w.hidden:
        for entry in entries:
            entry["changes"] = {k: v for k, v in entry["changes"].items() if k not in w.hidden}
    return entries
