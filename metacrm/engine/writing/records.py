"""The records service: the only write path for object records.

Coercion and validation, defaults, auto-numbers, unique and lookup checks, system
columns, optimistic locking, the recycle bin and the audit log happen here, so the API,
the web forms, imports and jobs get the same behaviour. What features add to a write
(stages, approvals, line items, roll-ups…) are hooks in ``hooks``' catalogue; this
module imports none of them.

Entry points: ``create``/``create_many``, ``update_record``, ``delete``, ``restore`` for
user paths; ``hold`` + ``change`` for a feature that takes a record, checks it and then
writes the fields it owns (a stage move); ``create_lines``, ``change_line`` and
``delete_line`` for the lines of a parent being written, under the parent's checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine import audit
from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied, RecordNotFound, StaleVersion, ValidationFailed
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import hooks, lookup_filters
from metacrm.engine.writing.hooks import LINES, RECORD, WriteContext
from metacrm.engine.writing.writer import (
    WRITABLE_SYSTEM,
    Record,
    Writer,
    raise_errors,
    to_json,
)
from metacrm.metadata.messages import Message, named
from metacrm.metadata.model import ObjectDef

__all__ = ["RECORD", "Record", "WriteContext", "change", "change_line", "create", "create_lines",
           "create_many", "delete", "delete_line", "get", "history", "hold", "read",
           "restore", "to_json", "update_record"]


# -- creating -------------------------------------------------------------------------------
def create(session: Session, registry: Registry, obj: ObjectDef | str, values: Mapping[str, Any],
           *, actor: Actor, by: str = RECORD) -> Record:
    """Validate and insert one record; returns it as stored."""
    return create_many(session, registry, obj, [values], actor=actor, by=by)[0]


def create_many(session: Session, registry: Registry, obj: ObjectDef | str,
                batch: Sequence[Mapping[str, Any]], *, actor: Actor,
                by: str = RECORD) -> list[Record]:
    """Validate and insert records with one statement per check, not per record.

    All or nothing: the first invalid row raises ValidationFailed naming its index.
    ``by``: who writes, a user path or the feature that owns some of the fields given
    (the stage engine starting records in a later stage)."""
    w = Writer(session, registry, obj, actor)
    w.require("create")
    return _create(WriteContext(session, registry, w.obj, actor, w, "create", entry=by), batch)


def create_lines(parent: WriteContext, obj: ObjectDef, batch: Sequence[Mapping[str, Any]]
                 ) -> list[Record]:
    """Create lines of the parent being written: the parent's checks govern them."""
    w = Writer(parent.session, parent.registry, obj, parent.actor)
    return _create(WriteContext(parent.session, parent.registry, obj, parent.actor, w,
                                "create", entry=LINES, parent=parent), batch)


def _create(ctx: WriteContext, batch: Sequence[Mapping[str, Any]]) -> list[Record]:
    w, actor, rows = ctx.writer, ctx.actor, ctx.rows
    defaults = w.defaults(actor)
    stamp = clock.now()
    given: list[set[str]] = []
    many = len(batch) > 1
    for values in batch:
        errors: dict[str, Any] = {}
        own, unstored = w.split(values)
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
        rows.append(row)
        ctx.unstored.append(unstored)
        ctx.errors.append(errors)
        given.append(set(coerced))
    hooks.run("before_validate", ctx)
    for i, errors in enumerate(ctx.errors):
        raise_errors(errors, row=i if many else None)
    w.compute(rows, given, many)
    errors = {}
    w.check_references(rows, errors, actor)
    lookup_filters.check(w.conn, ctx.registry, w.obj, rows, errors)
    if many:
        w.check_unique(rows, errors)
    raise_errors(errors)
    w.number(rows, stamp.astimezone().date())
    w.set_departments(rows)
    hooks.run("before_write", ctx)
    changes = [w.plan.created(row) for row in rows]
    stamps = {"created_at": stamp, "updated_at": stamp, "created_by": actor.user_id,
              "updated_by": actor.user_id, "version": 1, "deleted": False}
    for row in rows:
        row.update(stamps)
    folded = len(rows) == 1 and audit.foldable(ctx.session, w.conn.dialect.name)
    if folded:  # the audit entry is written by the INSERT itself
        _insert_one(w, rows[0], audit.entry_params(actor.user_id, stamp, changes[0]))
    else:
        _insert(w, rows)
    ids = [row["id"] for row in rows]
    if not ctx.is_line and not w.in_scope(ids, "create", rows):
        raise PermissionDenied(Message("you may not create %(object)s records with this owner "
                                       "or these values", object=named(w.obj.name, w.obj.label)))
    for row, change_ in zip(rows, [] if folded else changes, strict=not folded):
        audit.record(ctx.session, w.obj.name, row["id"], "create", actor.user_id, stamp,
                     change_)
    hooks.run("after_write", ctx)
    found = _reread(w, ids, rows) if ctx.reread else rows
    hooks.run("after_commit", ctx)
    return [w.visible(row) for row in found]


def _reread(w: Writer, ids: list[int], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as stored now that hooks wrote their computed values (roll-ups)."""
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


def _insert_one(w: Writer, row: dict[str, Any], entry: dict[str, Any] | None = None) -> None:
    """One statement: the unique indexes refuse a taken value, then we say which. With
    ``entry`` (``audit.entry_params``) the same statement writes the audit entry."""
    if entry is not None:
        stmt = w.plan.insert_audited(frozenset(row), bool(w.plan.unique))
        new_id = w.conn.execute(stmt, {**row, **entry}).scalar()
    elif not w.plan.unique:
        row["id"] = w.conn.execute(w.plan.insert, row).scalar_one()
        return
    else:
        new_id = w.conn.execute(w.plan.insert_new(w.conn.dialect.name), row).scalar()
    if new_id is None:
        errors: dict[str, Any] = {}
        w.check_unique([row], errors)
        raise ValidationFailed(errors or {f.name: Message("this value is already used")
                                          for f in w.plan.unique})
    row["id"] = new_id


# -- reading --------------------------------------------------------------------------------
def get(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
        *, actor: Actor) -> Record:
    """The record as the actor may see it (404 outside the read scope)."""
    w = Writer(session, registry, obj, actor)
    return w.visible(w.fetch(record_id))


def read(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
         actor: Actor, need: tuple[str, ...] = (), for_update: bool = False) -> Record:
    """The whole stored record, for engine work that acts on it as ``actor``: 404 outside
    the read scope, 403 when ``need`` names an operation outside the actor's scope."""
    return Writer(session, registry, obj, actor).fetch(record_id, need=need,
                                                       for_update=for_update)


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


# -- changing -------------------------------------------------------------------------------
def hold(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
         actor: Actor, need: tuple[str, ...] = ("edit",), by: str = RECORD,
         parent: WriteContext | None = None, via: str | None = None) -> WriteContext:
    """Take a record for a change: read and lock it in the actor's scope (404 outside it,
    403 without each of ``need``), then the guard hooks (a record in approval is locked).
    ``by``: who will write, a user path or the feature that owns some of its fields;
    ``via``: what the audit entry says made the change (an automation)."""
    w = Writer(session, registry, obj, actor)
    current = w.fetch(record_id, for_update=True, need=need)
    ctx = WriteContext(session, registry, w.obj, actor, w, "update", entry=by,
                       current=current, parent=parent, via=via)
    hooks.run("guard", ctx)
    return ctx


def update_record(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int,
                  values: Mapping[str, Any], *, actor: Actor,
                  version: int | None = None) -> Record:
    """Change some fields; with ``version`` given, a stale one raises StaleVersion."""
    wants_owner = "owner" in values and values["owner"] not in (None, "")
    ctx = hold(session, registry, obj, record_id, actor=actor,
               need=("edit", "transfer") if wants_owner else ("edit",))
    return change(ctx, values, version=version)


def change_line(parent: WriteContext, obj: ObjectDef, record_id: int,
                values: Mapping[str, Any]) -> Record:
    """Change a line of the parent being written (its edit scope is the parent's)."""
    ctx = hold(parent.session, parent.registry, obj, record_id, actor=parent.actor,
               by=LINES, parent=parent)
    return change(ctx, values)


def change(ctx: WriteContext, values: Mapping[str, Any], *, version: int | None = None
           ) -> Record:
    """Write ``values`` to the record ``hold`` took: validation, the hooks, the update
    (optimistic: it must still be at the version read), the audit entry."""
    w, current, actor = ctx.writer, ctx.current, ctx.actor
    assert current is not None and ctx.operation == "update" and not ctx.rows
    record_id = current["id"]
    if version is not None and version != current["version"]:
        raise StaleVersion(f"{w.obj.name} {record_id} was changed by someone else "
                           f"(version {current['version']}, not {version})",
                           current_version=current["version"])
    errors: dict[str, Any] = {}
    own, unstored = w.split(values)
    changes = ctx.changes
    changes.update({k: v for k, v in w.coerce(own, errors).items() if current.get(k) != v})
    merged = {**current, **changes}
    ctx.rows.append(merged)
    ctx.unstored.append(unstored)
    ctx.errors.append(errors)
    w.check_offered(changes, errors, current)
    w.check_field_rules(changes, current, errors)
    w.check_required(merged, errors, only=changes)
    w.check_business_type(merged, errors)
    if "business_type" in changes:
        w.check_type_offered(merged, errors)
    hooks.run("before_validate", ctx)
    raise_errors(errors)
    if not changes and not unstored:
        return current
    if changes:
        w.compute([merged], None, False)
        changes.update({f.name: merged[f.name] for f, _ in w.computer.logic.formulas
                        if merged[f.name] != current.get(f.name)})
    w.check_references([changes], errors, actor)
    w.check_unique([changes], errors, exclude_id=record_id)
    if changes:
        lookup_filters.check(w.conn, ctx.registry, w.obj, [merged], errors)
    raise_errors(errors)
    hooks.run("before_write", ctx)
    stamp = clock.now()
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
    if "owner" not in changes and not ctx.is_line and scope_fields & changes.keys() \
            and not w.in_scope([record_id], "edit"):
        raise PermissionDenied(Message("after this change the record would be outside what "
                                       "you may edit"))
    if changes:
        before, after = w.audit_values({k: current.get(k) for k in changes}), \
            w.audit_values(changes)
        audit.record(ctx.session, w.obj.name, record_id, "update", actor.user_id, stamp,
                     {k: [before[k], after[k]] for k in changes}, via=ctx.via)
    merged.update(written)
    hooks.run("after_write", ctx)
    hooks.run("after_commit", ctx)
    if ctx.reread:
        return w.visible(w.fetch(record_id))
    return w.visible({**merged, "updated_at": stamp, "updated_by": actor.user_id,
                      "version": current["version"] + 1})


# -- deleting -------------------------------------------------------------------------------
def delete(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
           actor: Actor, version: int | None = None) -> None:
    """Soft delete: the record (and its lines) move to the recycle bin."""
    w = Writer(session, registry, obj, actor)
    _set_deleted(WriteContext(session, registry, w.obj, actor, w, "delete"), record_id,
                 version)


def delete_line(parent: WriteContext, obj: ObjectDef, record_id: int) -> None:
    """Delete a line of the parent being written (the parent's edit governs it)."""
    w = Writer(parent.session, parent.registry, obj, parent.actor)
    _set_deleted(WriteContext(parent.session, parent.registry, obj, parent.actor, w, "delete",
                              entry=LINES, parent=parent), record_id, None)


def restore(session: Session, registry: Registry, obj: ObjectDef | str, record_id: int, *,
            actor: Actor) -> Record:
    w = Writer(session, registry, obj, actor)
    _set_deleted(WriteContext(session, registry, w.obj, actor, w, "restore"), record_id, None)
    return get(session, registry, obj, record_id, actor=actor)


def _set_deleted(ctx: WriteContext, record_id: int, version: int | None) -> None:
    w, actor = ctx.writer, ctx.actor
    deleted = ctx.operation == "delete"
    ctx.current = w.fetch(record_id, deleted=not deleted,
                          need=("delete",) if not ctx.is_line else ())
    hooks.run("guard", ctx)
    hooks.run("before_write", ctx)
    table = w.table
    stamp = clock.now()
    where = [table.c.id == record_id, table.c.deleted.is_(not deleted)]
    if version is not None:
        where.append(table.c.version == version)
    result = w.conn.execute(update(table).where(*where).values(
        deleted=deleted, deleted_at=stamp if deleted else None,
        deleted_by=actor.user_id if deleted else None, version=table.c.version + 1))
    if result.rowcount != 1:
        raise StaleVersion(f"{w.obj.name} {record_id} was changed by someone else")
    audit.record(ctx.session, w.obj.name, record_id, "delete" if deleted else "restore",
                 actor.user_id, stamp, {})
    ctx.state["stamp"] = stamp
    hooks.run("after_write", ctx)
    hooks.run("after_commit", ctx)
