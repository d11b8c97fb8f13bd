"""Keeping stored computed values current after a write, inside the same transaction.

- Roll-ups: when records of a child object change, the parents they point at (before
  and after) get their summaries recomputed by one set-based UPDATE per parent object.
- Formulas that read a roll-up, or a lookup's field that changed, are recomputed for
  the records concerned, in batches, and written where they differ.
- A parent that is itself summarised elsewhere passes the change on.
- A record whose values change because another record was written (a contract's
  received amount when a payment is added) gets a new version and an audit entry
  ("recalculate", by the user whose write caused it), set-based: two reads and one
  UPDATE per batch. Admin-driven rebuilds and the record being written itself are
  not stamped (the write versions and audits its own record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
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
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import audit
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import expression_sql
from metacrm.engine.writing.computing import Computer
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.computed import Rollup
from metacrm.metadata.model import ObjectDef

__all__ = ["REFRESH", "Stamp", "rebuild", "refresh"]

BATCH = 2000
AGGREGATES: dict[str, Callable[..., ColumnElement[Any]]] = {
    "count": func.count, "sum": func.sum, "min": func.min, "max": func.max}


@dataclass(frozen=True)
class Stamp:
    """Who changed records indirectly, and when: they get a new version and an audit
    entry. ``own``: (object, id) of the records the write versions itself."""

    session: Session
    actor_id: int | None
    at: dt.datetime
    own: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def of(cls, ctx: WriteContext) -> Stamp:
        own: set[tuple[str, int]] = set()
        found: WriteContext | None = ctx
        while found is not None:
            rows = found.rows or ([found.current] if found.current else [])
            own.update((found.obj.name, r["id"]) for r in rows if r.get("id") is not None)
            found = found.parent
        return cls(ctx.session, ctx.actor.user_id, clock.now(), frozenset(own))


def _tracked(registry: Registry, obj: ObjectDef, ids: list[int], stamp: Stamp | None,
             names: list[str], work: Callable[[], object]) -> None:
    """Run ``work`` (which may change ``names`` of the records ``ids``); with a stamp,
    give each record that changed a new version and an audit entry."""
    ids = [i for i in ids if stamp is None or (obj.name, i) not in stamp.own]
    if stamp is None or not names or not ids:
        work()
        return
    conn = stamp.session.connection()
    table = registry.table(obj)
    read = select(table.c.id, *(table.c[n] for n in names)).where(table.c.id.in_(ids))
    before = {r.id: r._mapping for r in conn.execute(read)}
    work()
    changed: dict[int, dict[str, list[Any]]] = {}
    for row in conn.execute(read):
        old = before.get(row.id)
        diff = {n: [_json(obj, n, old[n] if old else None), _json(obj, n, row._mapping[n])]
                for n in names if old is None or old[n] != row._mapping[n]}
        if diff:
            changed[row.id] = diff
    if not changed:
        return
    conn.execute(update(table).where(table.c.id.in_(sorted(changed))).values(
        version=table.c.version + 1, updated_at=stamp.at))
    for record_id, diff in changed.items():
        audit.record(stamp.session, obj.name, record_id, "recalculate", stamp.actor_id,
                     stamp.at, diff)


def _json(obj: ObjectDef, name: str, value: Any) -> Any:
    return None if value is None else obj.all_fields[name].kind.to_json(value)


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
            *, depth: int = 0, stamp: Stamp | None = None) -> None:
    """Recompute the roll-ups of these parents, then what depends on them; with
    ``stamp``, the records that changed are versioned and audited."""
    if depth > 8:  # a chain of summaries this deep is a definition loop
        raise ValueError("roll-ups summarise each other in a loop")
    for parent_name, ids in parents.items():
        if not ids:
            continue
        parent = registry.objects[parent_name]
        logic = registry.logic_of(parent)
        names = [r.field.name for r in logic.rollups] + [f.name for f, _ in logic.formulas]
        ordered = sorted(ids)
        for start in range(0, len(ordered), BATCH):
            chunk = ordered[start:start + BATCH]
            _tracked(registry, parent, chunk, stamp, names, partial(
                _summarise_and_recompute, conn, registry, parent, logic.rollups, chunk,
                depth, stamp))


def _summarise_and_recompute(conn: Connection, registry: Registry, parent: ObjectDef,
                             rollups: Iterable[Rollup], ids: list[int], depth: int,
                             stamp: Stamp | None) -> None:
    _summarise(conn, registry, parent, rollups, ids)
    recompute(conn, registry, parent, ids, check=True, depth=depth, stamp=stamp)


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
              check: bool = False, depth: int = 0, stamp: Stamp | None = None) -> int:
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
                depth=depth + 1, stamp=stamp)
    return len(changed)


def after_update(conn: Connection, registry: Registry, obj: ObjectDef, record_id: int,
                 changed: set[str], before: Mapping[str, Any], after: Mapping[str, Any],
                 stamp: Stamp | None = None) -> None:
    """After one record changed: its old and new parents' roll-ups, and the formulas of
    other objects that read the changed fields through a lookup."""
    refresh(conn, registry, parents_of(registry, obj, [before, after], changed), stamp=stamp)
    for reader, lookup, fields in registry.readers.get(obj.name, ()):
        if fields & changed:
            table = registry.table(reader)
            reader_obj = registry.objects[reader]
            names = [f.name for f, _ in registry.logic_of(reader_obj).formulas]
            ids = list(conn.execute(select(table.c.id).where(table.c[lookup] == record_id))
                       .scalars())
            for start in range(0, len(ids), BATCH):
                chunk = ids[start:start + BATCH]
                _tracked(registry, reader_obj, chunk, stamp, names,
                         partial(recompute, conn, registry, reader_obj, chunk, stamp=stamp))


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
    stamp = Stamp.of(ctx)
    if ctx.operation == "create":
        refresh(conn, registry, parents_of(registry, obj, ctx.rows), stamp=stamp)
    elif ctx.operation == "update":
        assert ctx.current is not None
        after_update(conn, registry, obj, ctx.record_id, set(ctx.changes), ctx.current,
                     ctx.rows[0], stamp)
    else:
        refresh(conn, registry, parents_of(registry, obj, [ctx.current or {}]), stamp=stamp)


def _summarised(ctx: WriteContext) -> bool:
    """A line's change is summed up by its parent's write (once, after all its lines);
    new lines are summed up at once."""
    return ctx.operation == "create" or not ctx.is_line


REFRESH = Hook("rollups.refresh", "after_write",
               frozenset({"create", "update", "delete", "restore"}), _after_write, _summarised)
