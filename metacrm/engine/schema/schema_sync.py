"""Schema sync: compare definitions with the live database, plan typed changes, apply.

Additive changes (tables, nullable columns, indexes) apply online and never rewrite a
table. Changes that could lose or corrupt data are checked against the rows: when rows
would suffer, the change is refused with the reason, a count and sample ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (
    Column,
    Connection,
    Index,
    MetaData,
    Table,
    bindparam,
    func,
    inspect,
    select,
    update,
)

from metacrm.engine.schema.registry import Registry
from metacrm.engine.schema.tables import field_column
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["AddColumn", "Conversion", "ConvertColumn", "CreateIndex", "CreateTable", "FillBlanks",
           "Plan", "PlanOptions", "apply", "plan"]

SAMPLE_SIZE = 10
CONVERT_BATCH = 1000
# A field may change between these types with no check: every old value is valid as new.
WIDENING = {"string": {"text", "textarea"}}


@dataclass
class Change(ABC):
    object: str
    safe = True

    @abstractmethod
    def describe(self) -> str:
        """One line for the plan, e.g. ``add column thing.colour (text)``."""

    def apply(self, op: Operations, tables: dict[str, Table]) -> None:  # noqa: B027
        """Informational changes (archiving, refusals) need no DDL; the others override."""


@dataclass
class CreateTable(Change):
    def describe(self) -> str:
        return f"create table for object {self.object}"

    def apply(self, op, tables):
        table = tables[self.object]
        table.create(op.get_bind())


@dataclass(frozen=True)
class Conversion:
    """An admin's explicit answer to a refused change, naming what happens to the rows in
    its way: ``fill`` blanks with ``value``, or ``convert`` values to the new type (those
    that do not convert are cleared)."""

    action: str
    value: Any = None


@dataclass
class PlanOptions:
    conversions: dict[str, Conversion] = dc_field(default_factory=dict)  # "object.field" ->
    purge: frozenset[str] = frozenset()  # "object.field" whose column may be dropped


@dataclass
class AddColumn(Change):
    field: FieldDef
    fill: Any = None  # a required field's default, written into the existing rows

    def describe(self) -> str:
        filled = f", existing records set to {self.fill!r}" if self.fill is not None else ""
        return f"add column {self.object}.{self.field.name} ({self.field.type}){filled}"

    def apply(self, op, tables):
        op.add_column(tables[self.object].name, field_column(self.field))
        if self.fill is not None:
            table = tables[self.object]
            op.get_bind().execute(update(table).values({self.field.column: self.fill}))


@dataclass
class FillBlanks(Change):
    field: FieldDef
    value: Any = None
    count: int = 0

    def describe(self) -> str:
        return (f"set {self.object}.{self.field.name} to {self.value!r} in the {self.count} "
                "record(s) that have no value")

    def apply(self, op, tables):
        column = tables[self.object].c[self.field.column]
        op.get_bind().execute(update(tables[self.object]).where(column.is_(None))
                              .values({self.field.column: self.value}))


@dataclass
class ConvertColumn(Change):
    """A type change over existing values: each distinct value is converted by the new
    type's own coercion into a new column, which then replaces the old one."""

    field: FieldDef
    mapping: dict = dc_field(default_factory=dict)  # old value -> new value (None: cleared)
    lost: int = 0
    sample: list[int] = dc_field(default_factory=list)
    indexes: list[str] = dc_field(default_factory=list)

    def describe(self) -> str:
        lost = (f"; {self.lost} record(s) whose value does not convert are cleared "
                f"(ids {', '.join(str(i) for i in self.sample)})") if self.lost else ""
        return f"convert {self.object}.{self.field.name} to {self.field.type}{lost}"

    def apply(self, op, tables):
        table = tables[self.object]
        temp = f"{self.field.column}__new"
        conn = op.get_bind()
        op.add_column(table.name, field_column(self.field, temp))
        scratch = Table(table.name, MetaData(), Column("id"), Column(self.field.column),
                         field_column(self.field, temp))
        pairs = [{"old": old, "new": new} for old, new in self.mapping.items()
                 if new is not None]
        stmt = (update(scratch).where(scratch.c[self.field.column] == bindparam("old"))
                .values({temp: bindparam("new")}))
        for start in range(0, len(pairs), CONVERT_BATCH):
            conn.execute(stmt, pairs[start:start + CONVERT_BATCH])
        for name in self.indexes:
            op.drop_index(name, table_name=table.name)
        op.drop_column(table.name, self.field.column)
        op.alter_column(table.name, temp, new_column_name=self.field.column)


@dataclass
class DropColumn(Change):
    """A purged field's column: its values are gone; only an explicit purge plans this."""

    name: str = ""
    column: str = ""
    indexes: list[str] = dc_field(default_factory=list)

    def describe(self) -> str:
        return f"drop column {self.object}.{self.name} (purged: its values are deleted)"

    def apply(self, op, tables):
        table = tables[self.object]
        for name in self.indexes:
            op.drop_index(name, table_name=table.name)
        op.drop_column(table.name, self.column)


@dataclass
class RenameColumn(Change):
    old: str = ""
    new: str = ""

    def describe(self) -> str:
        return f"rename column {self.object}.{self.old} to {self.new}"

    def apply(self, op, tables):
        op.alter_column(tables[self.object].name, self.old, new_column_name=self.new)


@dataclass
class CreateIndex(Change):
    index: Index

    def describe(self) -> str:
        kind = "unique index" if self.index.unique else "index"
        return f"create {kind} {self.index.name} on {self.object}"

    def apply(self, op, tables):
        self.index.create(op.get_bind())


@dataclass
class DropIndex(Change):
    name: str = ""
    table: str = ""

    def describe(self) -> str:
        return f"drop index {self.name} on {self.object}"

    def apply(self, op, tables):
        op.drop_index(self.name, table_name=self.table)


@dataclass
class ReplaceColumn(Change):
    """A type change of a column that holds no values: dropped and added again."""

    field: FieldDef
    indexes: list[str] = dc_field(default_factory=list)

    def describe(self) -> str:
        return f"change type of empty column {self.object}.{self.field.name} to {self.field.type}"

    def apply(self, op, tables):
        table = tables[self.object]
        for name in self.indexes:
            op.drop_index(name, table_name=table.name)
        op.drop_column(table.name, self.field.column)
        op.add_column(table.name, field_column(self.field))


@dataclass
class ArchiveField(Change):
    name: str = ""

    def describe(self) -> str:
        return f"archive field {self.object}.{self.name} (hidden, data kept)"


@dataclass
class ArchiveObject(Change):
    def describe(self) -> str:
        return f"archive object {self.object} (hidden, table and data kept)"


@dataclass
class Refused(Change):
    """A change the data does not allow; nothing is applied while one is planned."""

    field_name: str = ""
    reason: str = ""
    count: int = 0
    sample: list[int] = dc_field(default_factory=list)
    conversion: str | None = None  # the Conversion action that would answer it
    safe = False

    def describe(self) -> str:
        ids = ", ".join(str(i) for i in self.sample)
        return (f"refused: {self.object}.{self.field_name}: {self.reason}; "
                f"{self.count} record(s) affected (ids {ids})")


@dataclass
class Plan:
    changes: list[Change]

    @property
    def refused(self) -> list[Refused]:
        return [c for c in self.changes if isinstance(c, Refused)]

    def describe(self) -> list[str]:
        return [c.describe() for c in self.changes]


class Planner:
    def __init__(self, conn: Connection, old: Registry | None, new: Registry,
                 options: PlanOptions | None = None):
        self.conn = conn
        self.old = old
        self.new = new
        self.options = options or PlanOptions()
        self.dropped: set[str] = set()  # indexes a column change drops with its column
        self.inspector = inspect(conn)
        self.existing_tables = set(self.inspector.get_table_names())

    def plan(self) -> Plan:
        changes: list[Change] = []
        for obj in self.new.objects.values():
            changes.extend(self._object_changes(obj))
        return Plan(changes)

    def _old_object(self, obj: ObjectDef) -> ObjectDef | None:
        if self.old is None:
            return None
        return next((o for o in self.old.objects.values() if o.key == obj.key), None)

    def _object_changes(self, obj: ObjectDef) -> Iterator[Change]:
        old = self._old_object(obj)
        if obj.archived:
            if old is not None and not old.archived:
                yield ArchiveObject(obj.name)
            return
        if obj.table_name not in self.existing_tables:
            yield CreateTable(obj.name)
            return
        table = self.new.table(obj)
        columns = {c["name"] for c in self.inspector.get_columns(obj.table_name)}
        old_fields = {f.key: f for f in old.fields} if old else {}
        renamed: set[str] = set()
        for f in obj.fields:
            if not f.stored:
                continue
            before = old_fields.get(f.key)
            if before and before.name != f.name and before.column in columns \
                    and f.column not in columns:
                yield RenameColumn(obj.name, old=before.column, new=f.column)
                renamed.add(f.column)
            elif f.column not in columns:
                yield from self._new_column(obj, table, f)
            elif before is not None:
                yield from self._field_changes(obj, table, before, f)
        kept = {f.key for f in obj.fields}
        for key, before in old_fields.items():
            if key not in kept and before.stored and before.column in columns:
                yield from self._removed(obj, before)
        yield from self._index_changes(obj, table, renamed)

    def _conversion(self, obj: ObjectDef, f: FieldDef, action: str) -> Conversion | None:
        found = self.options.conversions.get(f"{obj.name}.{f.name}")
        return found if found is not None and found.action == action else None

    def _new_column(self, obj: ObjectDef, table: Table, f: FieldDef) -> Iterator[Change]:
        """A required field needs a value in the rows already there: its default."""
        if not f.required or f.computed or f.kind.generated:
            yield AddColumn(obj.name, field=f)
            return
        count = self.conn.execute(select(func.count()).select_from(table)).scalar()
        fill = self._conversion(obj, f, "fill")
        value = fill.value if fill is not None else f.default
        if count and value is None:
            yield Refused(obj.name, field_name=f.name, count=count, conversion="fill",
                          reason=Message("a new required field needs a default for the "
                                         "existing records"))
            return
        fill = self._fill_value(obj, f, value, count) if count else None
        if isinstance(fill, Refused):
            yield fill
        else:
            yield AddColumn(obj.name, field=f, fill=fill)

    @staticmethod
    def _fill_value(obj: ObjectDef, f: FieldDef, value: Any, count: int) -> Any:
        """The value to fill blanks with, as the field stores it; a Refused when it does
        not fit the field."""
        from metacrm.metadata.fieldtypes import InvalidValue

        try:
            return f.kind.coerce(value, f)
        except InvalidValue as exc:
            return Refused(obj.name, field_name=f.name, count=count, conversion="fill",
                           reason=Message("the value to fill in does not fit the field: "
                                          "%(problem)s", problem=exc.message))

    def _removed(self, obj: ObjectDef, before: FieldDef) -> Iterator[Change]:
        if f"{obj.name}.{before.name}" in self.options.purge:
            yield DropColumn(obj.name, name=before.name, column=before.column,
                             indexes=self._indexes_on(obj.table_name, before.column))
        else:
            yield Refused(obj.name, field_name=before.name,
                          reason=Message("a field leaves the metadata only by an explicit purge; "
                                         "archive it instead"))

    def _field_changes(self, obj: ObjectDef, table: Table, before: FieldDef,
                       after: FieldDef) -> Iterator[Change]:
        column = table.c[after.column]
        if after.archived and not before.archived:
            yield ArchiveField(obj.name, name=after.name)
            return
        if after.archived:
            return
        if self._type_changed(before, after):
            if after.type in WIDENING.get(before.kind.storage, ()):
                pass
            elif after.kind.options and before.kind.storage == after.kind.storage:
                yield from self._count(obj, table, after, column.not_in(_all_options(after)),
                                       Message("values are not options of the new %(type)s field",
                                               type=after.type))
            else:
                yield from self._retype(obj, table, before, after)
            return
        if after.required and not before.required:
            fill = self._conversion(obj, after, "fill")
            if fill is not None and fill.value is not None:
                count = self.conn.execute(select(func.count()).select_from(table)
                                          .where(column.is_(None))).scalar_one()
                value = self._fill_value(obj, after, fill.value, count)
                yield value if isinstance(value, Refused) else FillBlanks(
                    obj.name, field=after, count=count, value=value)
            else:
                yield from self._count(obj, table, after, column.is_(None),
                                       Message("required, but some records have no value"),
                                       conversion="fill")
        if after.unique and not before.unique:
            yield from self._duplicates(obj, table, after)
        limit = after.max_length or after.kind.default_max_length
        if after.kind.storage == "string" and limit and limit < (
                before.max_length or before.kind.default_max_length or limit + 1):
            yield from self._count(obj, table, after, func.length(column) > limit,
                                   Message("some values are longer than %(limit)s characters",
                                           limit=limit))
        if after.kind.options and after.kind.storage == "string":
            removed = set(_all_options(before)) - set(_all_options(after))
            if removed:
                yield from self._count(obj, table, after, column.in_(sorted(removed)),
                                       Message("options in use were removed: %(values)s "
                                               "(deactivate them instead)",
                                               values=", ".join(sorted(removed))))

    def _retype(self, obj: ObjectDef, table: Table, before: FieldDef,
                after: FieldDef) -> Iterator[Change]:
        column = table.c[after.column]
        indexes = self._indexes_on(obj.table_name, after.column)
        refused = list(self._count(obj, table, after, column.is_not(None),
                                   Message("type change %(before)s -> %(after)s needs an explicit "
                                           "conversion of existing values", before=before.type,
                                           after=after.type),
                                   conversion="convert" if _convertible(before, after) else None))
        if not refused:
            yield ReplaceColumn(obj.name, field=after, indexes=indexes)
        elif self._conversion(obj, after, "convert") is None or not _convertible(before, after):
            yield from refused
        else:
            mapping = self._mapping(table.c[before.column], after)
            failing = [old for old, new in mapping.items() if new is None]
            lost = next(self._count(obj, table, after, column.in_(failing), ""), None) \
                if failing else None
            yield ConvertColumn(obj.name, field=after, mapping=mapping, indexes=indexes,
                                lost=lost.count if lost else 0,
                                sample=lost.sample if lost else [])

    def _mapping(self, column, after: FieldDef) -> dict:
        """Each distinct old value and what the new type makes of it (None: it does not)."""
        from metacrm.metadata.fieldtypes import InvalidValue

        out = {}
        for (value,) in self.conn.execute(select(column).where(column.is_not(None)).distinct()):
            try:
                out[value] = after.kind.coerce(value, after)
            except (InvalidValue, ValueError, TypeError, ArithmeticError):
                out[value] = None
        return out

    @staticmethod
    def _type_changed(before: FieldDef, after: FieldDef) -> bool:
        return before.type != after.type or before.returns != after.returns or (
            before.kind.storage == "decimal"
            and (before.precision, before.scale) != (after.precision, after.scale))

    def _count(self, obj: ObjectDef, table: Table, f: FieldDef, condition,
               reason: str, conversion: str | None = None) -> Iterator[Refused]:
        count = self.conn.execute(select(func.count()).select_from(table).where(condition)).scalar()
        if count:
            sample = self.conn.execute(select(table.c.id).where(condition).order_by(table.c.id)
                                       .limit(SAMPLE_SIZE)).scalars().all()
            yield Refused(obj.name, field_name=f.name, reason=reason, count=count,
                          sample=list(sample), conversion=conversion)

    def _duplicates(self, obj: ObjectDef, table: Table, f: FieldDef) -> Iterator[Refused]:
        column = table.c[f.column]
        dupes = (select(column).where(column.is_not(None)).group_by(column)
                 .having(func.count() > 1).subquery())
        yield from self._count(obj, table, f, column.in_(select(dupes.c[0])),
                               Message("unique, but some records share a value"))

    def _indexes_on(self, table_name: str, column: str) -> list[str]:
        found = [i["name"] for i in self.inspector.get_indexes(table_name)
                 if i["name"] is not None and column in i["column_names"]]
        self.dropped.update(found)
        return found

    def _index_changes(self, obj: ObjectDef, table: Table, renamed: set[str]) -> Iterator[Change]:
        live = {i["name"]: i for i in self.inspector.get_indexes(obj.table_name)
                if i["name"] is not None and i["name"] not in self.dropped}
        wanted = {i.name: i for i in table.indexes}
        for name, index in wanted.items():
            if name not in live:
                yield CreateIndex(obj.name, index=index)
        for gone in live:
            if gone not in wanted and gone.startswith(("ix_", "uq_")):
                yield DropIndex(obj.name, name=gone, table=obj.table_name)


def _all_options(f: FieldDef) -> list[str]:
    """Every option value, deactivated ones included: records may still hold them."""
    return [o.value for o in f.options]


def _convertible(before: FieldDef, after: FieldDef) -> bool:
    """Scalar values convert one by one; lists (multiselect) and lines do not."""
    scalar = {"string", "integer", "decimal", "date", "datetime", "boolean"}
    return before.kind.storage in scalar and after.kind.storage in scalar and not after.computed


def plan(conn: Connection, old: Registry | None, new: Registry,
         options: PlanOptions | None = None) -> Plan:
    return Planner(conn, old, new, options).plan()


def apply(conn: Connection, planned: Plan, new: Registry) -> None:
    """Apply a plan inside the caller's transaction; refuses the whole plan if any part is."""
    from metacrm.engine.errors import SchemaChangeRefused

    if planned.refused:
        raise SchemaChangeRefused(planned.refused)
    op = Operations(MigrationContext.configure(conn))
    ordered = sorted(planned.changes, key=lambda c: isinstance(c, CreateIndex))
    drops = [c for c in ordered if isinstance(c, DropIndex)]
    for change in drops + [c for c in ordered if not isinstance(c, DropIndex)]:
        change.apply(op, new.tables)

