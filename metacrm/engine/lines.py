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

from metacrm.engine import permissions
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.registry import Registry
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef

Lines = dict[str, list[dict[str, Any]]]


def split(obj: ObjectDef, values: Mapping[str, Any], errors: dict[str, str]
          ) -> tuple[Mapping[str, Any], Lines]:
    """The record's own values, and the submitted lines of each line field."""
    if not obj.line_fields:
        return values, {}
    own, lines = {}, {}
    names = {f.name: f for f in obj.line_fields}
    for key, value in values.items():
        f = names.get(key)
        if f is None:
            own[key] = value
            continue
        try:
            lines[key] = f.kind.coerce(value if value is not None else [], f)
        except InvalidValue as exc:
            errors[key] = exc.message
    return own, lines


def child_of(registry: Registry, f: FieldDef) -> tuple[ObjectDef, FieldDef]:
    child = registry.object(f.target)
    return child, child.master_field


def _renamed(errors: Mapping[str, str], field: str, index: int) -> dict[str, str]:
    return {f"{field}[{index}].{name}": message for name, message in errors.items()}


def create(session: Session, registry: Registry, obj: ObjectDef, parent_ids: Sequence[int],
           lines: Sequence[Lines], actor: Actor) -> None:
    """Create the lines of new parents (``lines[i]`` belongs to ``parent_ids[i]``)."""
    from metacrm.engine import records

    for f in obj.line_fields:
        child, master = child_of(registry, f)
        batch, owners = [], []
        for k, (parent_id, submitted) in enumerate(zip(parent_ids, lines, strict=True)):
            for j, line in enumerate(submitted.get(f.name, ())):
                batch.append({**_without(line, master.name), master.name: parent_id})
                owners.append((k, j))
        if not batch:
            continue
        try:
            records.create_many(session, registry, child, batch, actor=actor, as_lines=True)
        except ValidationFailed as exc:
            k, j = owners[exc.row or 0]
            raise ValidationFailed(_renamed(exc.fields, f.name, j),
                                   row=k if len(parent_ids) > 1 else None) from None


def replace(session: Session, registry: Registry, obj: ObjectDef, parent_id: int,
            lines: Lines, actor: Actor) -> bool:
    """Make a parent's lines the submitted ones; returns whether anything was written."""
    from metacrm.engine import records

    wrote = False
    for f in obj.line_fields:
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
            if line_id not in current:
                errors[f"{f.name}[{j}].id"] = Message("is not a line of this record")
                continue
            kept.add(line_id)
            try:
                records.update_record(session, registry, child, line_id, values, actor=actor,
                                      as_lines=True)
            except ValidationFailed as exc:
                errors.update(_renamed(exc.fields, f.name, j))
        if errors:
            raise ValidationFailed(errors)
        for line_id in sorted(current - kept):
            records.delete(session, registry, child, line_id, actor=actor, as_lines=True)
        if new:
            try:
                records.create_many(session, registry, child, [v for _, v in new],
                                    actor=actor, as_lines=True)
            except ValidationFailed as exc:
                raise ValidationFailed(_renamed(exc.fields, f.name, new[exc.row or 0][0])
                                       ) from None
        wrote = wrote or bool(new or kept or current)
    return wrote


def cascade_delete(session: Session, registry: Registry, obj: ObjectDef, parent_id: int,
                   deleted: bool, stamp, actor: Actor, parent_deleted_at=None) -> None:
    """A parent's lines go to the recycle bin and come back with it (those it took)."""
    for f in obj.line_fields:
        child, master = child_of(registry, f)
        table = registry.table(child)
        where = [table.c[master.name] == parent_id, table.c.deleted.is_(not deleted)]
        if not deleted:
            where.append(table.c.deleted_at == parent_deleted_at)
        session.connection().execute(update(table).where(*where).values(
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
        hidden = permissions.hidden_fields(session, actor, child)
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
