"""Keeping stored computed values current after a write, inside the same transaction.

- Roll-ups: when records of a child object change, the parents they point at (before
  and after) get their summaries recomputed by one set-based UPDATE per parent object.
- Formulas that read a roll-up, or a lookup's field that changed, are recomputed for
  the records concerned, in batches, and written where they differ.
- A parent that is itself summarised elsewhere passes the change on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    bindparam,
    cast,
    func,
    select,
    update,
)

from metacrm.engine.errors import ValidationFailed
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import expression_sql
from metacrm.engine.writing.computing import Computer
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.computed import Rollup
from metacrm.metadata.model import ObjectDef

__all__ = ["REFRESH", "rebuild", "refresh"]

BATCH = 2000
AGGREGATES: dict[str, Callable[..., ColumnElement[Any]]] = {
    "count": func.count, "sum": func.sum, "min": func.min, "max": func.max}


def parents_of(registry: Registry, obj: ObjectDef, rows: Iterable[Mapping[str, Any]],
               changed: set[str] | None = None) -> dict[str, set[int]]:
    """Parent object → ids whose roll-ups summarise any of ``rows`` (by their via values);
    with ``changed``, only the roll-ups that read one of those fields."""
    out: dict[str, set[int]] = {}
    rows = list(rows)
    for parent, rollup in registry.rollups_over.get(obj.name, ()):
        if changed is not None and not rollup.reads & changed:
            continue
        ids = {r[rollup.via] for r in rows if r.get(rollup.via) is not None}
        if ids:
            out.setdefault(parent, set()).update(ids)
    return out


def refresh(conn: Connection, registry: Registry, parents: Mapping[str, set[int]],
            *, depth: int = 0) -> None:
    """Recompute the roll-ups of these parents, then what depends on them."""
    if depth > 8:  # a chain of summaries this deep is a definition loop
        raise ValueError("roll-ups summarise each other in a loop")
    for parent_name, ids in parents.items():
        if not ids:
            continue
        parent = registry.objects[parent_name]
        rollups = registry.logic_of(parent).rollups
        ordered = sorted(ids)
        for start in range(0, len(ordered), BATCH):
            chunk = ordered[start:start + BATCH]
            _summarise(conn, registry, parent, rollups, chunk)
            recompute(conn, registry, parent, chunk, check=True, depth=depth)


def _summarise(conn: Connection, registry: Registry, parent: ObjectDef,
               rollups: Iterable[Rollup], ids: list[int]) -> None:
    table = registry.table(parent)
    values = {r.field.name: _aggregate(conn, registry, parent, table, r) for r in rollups}
    conn.execute(update(table).where(table.c.id.in_(ids)).values(values))


def _aggregate(conn: Connection, registry: Registry, parent: ObjectDef, table, r: Rollup):
    child = registry.table(r.child)
    value: ColumnElement[Any]
    if r.function == "count":
        value = func.count()
        scale_from = 0
    else:
        assert r.summed is not None  # every function but count summarises a field
        column = child.c[r.summed]
        value = AGGREGATES[r.function](column)
        scale_from = registry.objects[r.child].all_fields[r.summed].scale
    target = parent.all_fields[r.field.name]
    if conn.dialect.name == "sqlite" and target.kind.storage == "decimal":
        # SQLite keeps decimals as integers scaled by their field's scale: rescale.
        shift = target.scale - (scale_from if r.function != "count" else 0)
        if shift > 0:
            value = value * (10 ** shift)
        elif shift < 0:
            value = cast(func.round(value / Decimal(10 ** -shift)), Integer)
    where = [child.c[r.via] == table.c.id, child.c.deleted.is_(False)]
    if r.filter is not None:
        where.append(expression_sql.to_sql(r.filter, lambda name: child.c[name]))
    stmt = select(value).where(*where)
    if r.function == "sum":
        return func.coalesce(stmt.scalar_subquery(), 0)
    return stmt.scalar_subquery()


def recompute(conn: Connection, registry: Registry, obj: ObjectDef, ids: list[int], *,
              check: bool = False, depth: int = 0) -> int:
    """Recompute the formulas of these records and write those that changed; returns the
    number of records changed. ``check``: the validation rules must still hold."""
    computer = Computer(conn, registry, obj)
    formulas = computer.logic.formulas
    rules = computer.logic.rules if check else ()
    if not formulas and not rules:
        return 0
    table = registry.table(obj)
    columns = [table.c[f.name] for f in obj.queryable.values()]
    rows = [dict(r._mapping) for r in conn.execute(select(*columns).where(table.c.id.in_(ids)))]
    names = computer.names(rows)
    changed: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for row, row_names in zip(rows, names, strict=True):
        before = {f.name: row[f.name] for f, _ in formulas}
        computer.fill_formulas(row, row_names, errors)
        if check:
            computer.check_rules(row_names, errors)
        if errors:
            raise ValidationFailed(errors)
        diff = {name: row[name] for name, value in before.items() if row[name] != value}
        if diff:
            changed.append({"_id": row["id"], **{f.name: row[f.name] for f, _ in formulas}})
    if changed:
        stmt = update(table).where(table.c.id == bindparam("_id")).values(
            {f.name: bindparam(f.name) for f, _ in formulas})
        conn.execute(stmt, changed)
        formula_names = {f.name for f, _ in formulas}
        refresh(conn, registry, parents_of(registry, obj, rows, formula_names),
                depth=depth + 1)
    return len(changed)


def after_update(conn: Connection, registry: Registry, obj: ObjectDef, record_id: int,
                 changed: set[str], before: Mapping[str, Any], after: Mapping[str, Any]
                 ) -> None:
    """After one record changed: its old and new parents' roll-ups, and the formulas of
    other objects that read the changed fields through a lookup."""
    refresh(conn, registry, parents_of(registry, obj, [before, after], changed))
    for reader, lookup, fields in registry.readers.get(obj.name, ()):
        if fields & changed:
            table = registry.table(reader)
            ids = list(conn.execute(select(table.c.id).where(table.c[lookup] == record_id))
                       .scalars())
            for start in range(0, len(ids), BATCH):
                recompute(conn, registry, registry.objects[reader], ids[start:start + BATCH])


def rebuild(conn: Connection, registry: Registry, obj: ObjectDef, field: str) -> int:
    """Recompute one formula or roll-up for every record (``metacrm recompute``)."""
    f = obj.all_fields[field]
    table = registry.table(obj)
    ids = list(conn.execute(select(table.c.id).order_by(table.c.id)).scalars())
    done = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        if f.type == "rollup":
            rollups = [r for r in registry.logic_of(obj).rollups if r.field.name == field]
            _summarise(conn, registry, obj, rollups, chunk)
        recompute(conn, registry, obj, chunk)
        done += len(chunk)
    return done


def _after_write(ctx: WriteContext) -> None:
    """The roll-ups that summarise the written rows, and the formulas reading them."""
    conn, registry, obj = ctx.session.connection(), ctx.registry, ctx.obj
    if ctx.operation == "create":
        refresh(conn, registry, parents_of(registry, obj, ctx.rows))
    elif ctx.operation == "update":
        assert ctx.current is not None
        after_update(conn, registry, obj, ctx.record_id, set(ctx.changes), ctx.current,
                     ctx.rows[0])
    else:
        refresh(conn, registry, parents_of(registry, obj, [ctx.current or {}]))


def _summarised(ctx: WriteContext) -> bool:
    """A line's change is summed up by its parent's write (once, after all its lines);
    new lines are summed up at once."""
    return ctx.operation == "create" or not ctx.is_line


REFRESH = Hook("rollups.refresh", "after_write",
               frozenset({"create", "update", "delete", "restore"}), _after_write, _summarised)
