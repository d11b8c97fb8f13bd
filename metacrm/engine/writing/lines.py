"""Line items (master-detail): child records written and read with their parent.

A parent's values may hold, for each ``lines`` field, the list of its lines: a line with
an ``id`` is updated, one without is created, and on an update the lines left out are
deleted. All of it happens in the parent's transaction, through the records service,
so the lines' own defaults, formulas and rules apply; the parent's roll-ups are then
recomputed once. Errors name the line: ``lines[2].quantity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from metacrm.engine.access import permissions
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records, rollups
from metacrm.engine.writing.hooks import Hook, WriteContext
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["DELETED_AT", "TAKE", "WRITE", "read"]

Lines = dict[str, list[dict[str, Any]]]


def take(ctx: WriteContext) -> None:
    """before_validate: the submitted lines of each line field, coerced, kept for the
    write (``ctx.state["lines"][i]``); a malformed list is the field's error."""
    found: list[Lines] = []
    names = {f.name: f for f in ctx.obj.line_fields}
    for unstored, errors in zip(ctx.unstored, ctx.errors, strict=True):
        lines: Lines = {}
        for key, value in unstored.items():
            f = names[key]
            try:
                lines[key] = f.kind.coerce(value if value is not None else [], f)
            except InvalidValue as exc:
                errors[key] = exc.message
        found.append(lines)
    ctx.state["lines"] = found


def child_of(registry: Registry, f: FieldDef) -> tuple[ObjectDef, FieldDef]:
    child = registry.object(f.target_object)
    master = child.master_field
    assert master is not None  # the checks give a lines field's object its master lookup
    return child, master


def _renamed(errors: Mapping[str, str], field: str, index: int) -> dict[str, str]:
    return {f"{field}[{index}].{name}": message for name, message in errors.items()}


def write(ctx: WriteContext) -> None:
    """after_write: the lines of new parents, or a changed parent's new set of lines, or
    its lines to the recycle bin and back with it."""
    if ctx.operation == "create":
        _create(ctx)
    elif ctx.operation == "update":
        _replace(ctx)
    else:
        _cascade_delete(ctx)


def _create(ctx: WriteContext) -> None:
    """Create the lines of new parents (``lines[i]`` belongs to ``ctx.rows[i]``)."""
    submitted: list[Lines] = ctx.state.get("lines", [])
    if not any(submitted):
        return
    registry, parent_ids = ctx.registry, [row["id"] for row in ctx.rows]
    for f in ctx.obj.line_fields:
        child, master = child_of(registry, f)
        batch, owners = [], []
        for k, (parent_id, given) in enumerate(zip(parent_ids, submitted, strict=True)):
            for j, line in enumerate(given.get(f.name, ())):
                batch.append({**_without(line, master.name), master.name: parent_id})
                owners.append((k, j))
        if not batch:
            continue
        try:
            records.create_lines(ctx, child, batch)
        except ValidationFailed as exc:
            k, j = owners[exc.row or 0]
            raise ValidationFailed(_renamed(exc.fields, f.name, j),
                                   row=k if len(parent_ids) > 1 else None) from None
    ctx.reread = True


def _replace(ctx: WriteContext) -> None:
    """Make a parent's lines the submitted ones; its roll-ups follow."""
    lines: Lines = ctx.state["lines"][0]
    registry, parent_id = ctx.registry, ctx.record_id
    session = ctx.session
    wrote = False
    for f in ctx.obj.line_fields:
        if f.name not in lines:
            continue
        child, master = child_of(registry, f)
        table = registry.table(child)
        current = set(session.connection().execute(
            select(table.c.id).where(table.c[master.name] == parent_id,
                                     table.c.deleted.is_(False))).scalars())
        errors: dict[str, str] = {}
        new, kept = [], set()
        for j, line in enumerate(lines[f.name]):
            line_id = line.get("id")
            values = _without(line, master.name, "id")
            if line_id in (None, ""):
                new.append((j, {**values, master.name: parent_id}))
                continue
            try:
                line_id = int(line_id)
            except (TypeError, ValueError):
                line_id = None
            if line_id is None or line_id not in current:
                errors[f"{f.name}[{j}].id"] = Message("is not a line of this record")
                continue
            kept.add(line_id)
            try:
                records.change_line(ctx, child, line_id, values)
            except ValidationFailed as exc:
                errors.update(_renamed(exc.fields, f.name, j))
        if errors:
            raise ValidationFailed(errors)
        for line_id in sorted(current - kept):
            records.delete_line(ctx, child, line_id)
        if new:
            try:
                records.create_lines(ctx, child, [v for _, v in new])
            except ValidationFailed as exc:
                raise ValidationFailed(_renamed(exc.fields, f.name, new[exc.row or 0][0])
                                       ) from None
        wrote = wrote or bool(new or kept or current)
    if wrote:
        rollups.refresh(session.connection(), registry, {ctx.obj.name: {parent_id}},
                        stamp=rollups.Stamp.of(ctx))
        ctx.reread = True


def deleted_at(ctx: WriteContext) -> None:
    """before_write of a restore: when the parent was deleted, which marks the lines that
    went with it."""
    table = ctx.registry.table(ctx.obj)
    assert ctx.current is not None
    ctx.state["deleted_at"] = ctx.session.connection().execute(
        select(table.c.deleted_at).where(table.c.id == ctx.current["id"])).scalar()


def _cascade_delete(ctx: WriteContext) -> None:
    """A parent's lines go to the recycle bin and come back with it (those it took)."""
    deleted, stamp, actor = ctx.operation == "delete", ctx.state["stamp"], ctx.actor
    assert ctx.current is not None
    parent_id, parent_deleted_at = ctx.current["id"], ctx.state.get("deleted_at")
    for f in ctx.obj.line_fields:
        child, master = child_of(ctx.registry, f)
        table = ctx.registry.table(child)
        where = [table.c[master.name] == parent_id, table.c.deleted.is_(not deleted)]
        if not deleted:
            where.append(table.c.deleted_at == parent_deleted_at)
        ctx.session.connection().execute(update(table).where(*where).values(
            deleted=deleted, deleted_at=stamp if deleted else None,
            deleted_by=actor.user_id if deleted else None, version=table.c.version + 1))


def read(session: Session, registry: Registry, obj: ObjectDef, record_ids: Sequence[int], *,
         actor: Actor) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """For each line field, parent id → its lines (as stored, oldest first). The caller
    has read the parents: their lines come with them."""
    out: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for f in obj.line_fields:
        child, master = child_of(registry, f)
        table = registry.table(child)
        hidden = permissions.hidden_fields(session, actor, child, registry)
        names = [n for n in child.queryable if n not in hidden]
        rows = session.connection().execute(
            select(*(table.c[n] for n in names)).where(
                table.c[master.name].in_(list(record_ids)), table.c.deleted.is_(False))
            .order_by(table.c[master.name], table.c.id))
        found: dict[int, list[dict[str, Any]]] = {i: [] for i in record_ids}
        for row in rows:
            found[row._mapping[master.name]].append(dict(row._mapping))
        out[f.name] = found
    return out


def _without(line: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in names}


def _has_lines(ctx: WriteContext) -> bool:
    return bool(ctx.obj.line_fields)


TAKE = Hook("lines.take", "before_validate", frozenset({"create", "update"}), take, _has_lines)
DELETED_AT = Hook("lines.deleted_at", "before_write", frozenset({"restore"}), deleted_at,
                  _has_lines)
WRITE = Hook("lines.write", "after_write", frozenset({"create", "update", "delete", "restore"}),
             write, _has_lines)
