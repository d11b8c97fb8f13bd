"""Object definitions → SQLAlchemy tables: one table per object, one typed column per field.

A fresh MetaData is built for each registry version and never mutated afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    false,
)
from sqlalchemy.types import TypeEngine

from metacrm.engine.sqltypes import ID, JSON_TYPE, ScaledDecimal, UTCDateTime
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["build_tables", "field_column"]

PG_MAX_IDENTIFIER = 63


def _decimal(f: FieldDef) -> TypeEngine:
    return Numeric(f.precision, f.scale, asdecimal=True).with_variant(ScaledDecimal(f.scale),
                                                                      "sqlite")


# The storage-kind catalogue: how each kind of value is kept in SQL.
STORAGE_TYPES: dict[str, Callable[[FieldDef], TypeEngine]] = {
    "string": lambda f: String(),
    "integer": lambda f: BigInteger().with_variant(Integer, "sqlite"),
    "decimal": _decimal,
    "date": lambda f: Date(),
    "datetime": lambda f: UTCDateTime(),
    "boolean": lambda f: Boolean(),
    "json": lambda f: JSON_TYPE,
    "reference": lambda f: ID,
}


def column_type(f: FieldDef) -> TypeEngine:
    return STORAGE_TYPES[f.kind.storage](f)


def constraint_name(prefix: str, table: str, *columns: str) -> str:
    name = "_".join([prefix, table, *columns])
    if len(name) <= PG_MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[:PG_MAX_IDENTIFIER - 11]}_{digest}"


def system_columns() -> list[Column]:
    return [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("owner", ID, index=False),
        Column("department", ID),
        Column("business_type", String(63)),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("created_by", ID),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("updated_by", ID),
        Column("version", Integer, nullable=False, default=1),
        Column("deleted", Boolean, nullable=False, default=False, server_default=false()),
        Column("deleted_at", UTCDateTime()),
        Column("deleted_by", ID),
    ]


def field_column(f: FieldDef, name: str | None = None) -> Column:
    return Column(name or f.column, column_type(f), nullable=True)


def wants_index(f: FieldDef) -> bool:
    return f.indexed or f.kind.references is not None


def field_indexes(table_name: str, f: FieldDef) -> list[Index]:
    """Indexes one field needs; non-unique ones end with id so sort + keyset use them fully."""
    out = []
    if f.unique:
        out.append(Index(constraint_name("uq", table_name, f.column), f.column, unique=True))
    elif wants_index(f):
        out.append(Index(constraint_name("ix", table_name, f.column), f.column, "id"))
    return out


def object_indexes(obj: ObjectDef) -> list[Index]:
    t = obj.table_name
    out = [
        Index(constraint_name("ix", t, "created_at"), "created_at", "id"),
        Index(constraint_name("ix", t, "updated_at"), "updated_at", "id"),
        Index(constraint_name("ix", t, "owner"), "owner", "id"),
        # Department scopes: a count reads this index alone (deleted rows left out).
        Index(constraint_name("ix", t, "department"), "department", "deleted"),
    ]
    for f in obj.fields:
        if f.stored:
            out.extend(field_indexes(t, f))
    for index in obj.indexes:
        columns = list(index.fields) if index.unique else [*index.fields, "id"]
        out.append(Index(constraint_name("uq" if index.unique else "ix", t, *index.fields),
                         *columns, unique=index.unique))
    return _with_reminder_indexes(obj, out)


def _with_reminder_indexes(obj: ObjectDef, out: list[Index]) -> list[Index]:
    """A reminder's scenes read its recipient's records by date: (recipient, date, id),
    or (date, id) for team members, found through their own index. The template author
    does not have to think of it."""
    names: set[str | None] = {i.name for i in out}
    for rule in obj.reminders:
        field = obj.field(rule.field)
        lead = [] if rule.to == "team" else [rule.to]
        if field is None or any(obj.field(name) is None for name in lead):
            continue  # metacrm validate refuses it; the table is still built
        name = constraint_name("ix", obj.table_name, *lead, field.column)
        if name not in names:
            names.add(name)
            out.append(Index(name, *lead, field.column, "id"))
    return out


def build_table(metadata: MetaData, obj: ObjectDef) -> Table:
    return Table(obj.table_name, metadata, *system_columns(),
                 *(field_column(f) for f in obj.fields if f.stored),
                 *object_indexes(obj), info={"object": obj})


def build_tables(objects: dict[str, ObjectDef]) -> tuple[MetaData, dict[str, Table]]:
    metadata = MetaData()
    tables = {name: build_table(metadata, obj) for name, obj in objects.items()}
    return metadata, tables
