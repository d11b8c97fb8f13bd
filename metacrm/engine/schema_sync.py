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

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, Index, Table, func, inspect, select

from metacrm.engine.registry import Registry
from metacrm.engine.tables import field_column
from metacrm.metadata.model import FieldDef, ObjectDef

SAMPLE_SIZE = 10
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


@dataclass
class AddColumn(Change):
    field: FieldDef = None

    def describe(self) -> str:
        return f"add column {self.object}.{self.field.name} ({self.field.type})"

    def apply(self, op, tables):
        op.add_column(tables[self.object].name, field_column(self.field))


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
    index: Index = None

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

    field: FieldDef = None
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
    def __init__(self, conn: Connection, old: Registry | None, new: Registry):
        self.conn = conn
        self.old = old
        self.new = new
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
                yield AddColumn(obj.name, field=f)
            elif before is not None:
                yield from self._field_changes(obj, table, before, f)
        yield from self._index_changes(obj, table, renamed)

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
                yield from self._count(obj, table, after, column.not_in(after.option_values),
                                       f"values are not options of the new {after.type} field")
            else:
                refused = list(self._count(obj, table, after, column.is_not(None),
                                           f"type change {before.type} -> {after.type} "
                                           "needs an explicit conversion of existing values"))
                if refused:
                    yield from refused
                else:
                    yield ReplaceColumn(obj.name, field=after,
                                        indexes=self._indexes_on(obj.table_name, after.column))
            return
        if after.required and not before.required:
            yield from self._count(obj, table, after, column.is_(None),
                                   "required, but some records have no value")
        if after.unique and not before.unique:
            yield from self._duplicates(obj, table, after)
        limit = after.max_length or after.kind.default_max_length
        if after.kind.storage == "string" and limit and limit < (
                before.max_length or before.kind.default_max_length or limit + 1):
            yield from self._count(obj, table, after, func.length(column) > limit,
                                   f"some values are longer than {limit} characters")
        if after.kind.options and after.kind.storage == "string":
            removed = set(before.option_values) - set(after.option_values)
            if removed:
                yield from self._count(obj, table, after, column.in_(sorted(removed)),
                                       f"options in use were removed: {', '.join(sorted(removed))}"
                                       " (deactivate them instead)")

    @staticmethod
    def _type_changed(before: FieldDef, after: FieldDef) -> bool:
        return before.type != after.type or before.returns != after.returns or (
            before.kind.storage == "decimal"
            and (before.precision, before.scale) != (after.precision, after.scale))

    def _count(self, obj: ObjectDef, table: Table, f: FieldDef, condition,
               reason: str) -> Iterator[Refused]:
        count = self.conn.execute(select(func.count()).select_from(table).where(condition)).scalar()
        if count:
            sample = self.conn.execute(select(table.c.id).where(condition).order_by(table.c.id)
                                       .limit(SAMPLE_SIZE)).scalars().all()
            yield Refused(obj.name, field_name=f.name, reason=reason, count=count,
                          sample=list(sample))

    def _duplicates(self, obj: ObjectDef, table: Table, f: FieldDef) -> Iterator[Refused]:
        column = table.c[f.column]
        dupes = (select(column).where(column.is_not(None)).group_by(column)
                 .having(func.count() > 1).subquery())
        yield from self._count(obj, table, f, column.in_(select(dupes.c[0])),
                               "unique, but some records share a value")

    def _indexes_on(self, table_name: str, column: str) -> list[str]:
        return [i["name"] for i in self.inspector.get_indexes(table_name)
                if column in i["column_names"]]

    def _index_changes(self, obj: ObjectDef, table: Table, renamed: set[str]) -> Iterator[Change]:
        live = {i["name"]: i for i in self.inspector.get_indexes(obj.table_name)}
        wanted = {i.name: i for i in table.indexes}
        for name, index in wanted.items():
            if name not in live:
                yield CreateIndex(obj.name, index=index)
        for name in live:
            if name not in wanted and name.startswith(("ix_", "uq_")):
                yield DropIndex(obj.name, name=name, table=obj.table_name)


def plan(conn: Connection, old: Registry | None, new: Registry) -> Plan:
    return Planner(conn, old, new).plan()


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

