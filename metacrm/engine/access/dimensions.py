"""Dimension trees (多维度: product line, region, industry, business line…) and users' values.

A dimension is a tree under a root (全部). An object opts in by having a field of type
``dimension`` (switched on per object by the admin); a record carries a node of the
tree, and data permissions on that object are intersected with the nodes the user holds
(each with everything below it). Holding the root means the whole dimension.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from metacrm.engine.access import permissions
from metacrm.engine.actor import Actor
from metacrm.engine.errors import RecordNotFound, ValidationFailed
from metacrm.engine.schema import changes
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import sys_dimension, sys_dimension_node, sys_user_dimension
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef

__all__ = ["Node", "add_node", "all_dimensions", "create_dimension", "default_values",
           "delete_node", "field_name", "nodes", "rename_node", "set_user_values", "switch",
           "user_values"]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
ROOT_LABEL = {"en": "All", "zh": "全部"}


@dataclass(frozen=True)
class Node:
    id: int
    dimension: str
    name: str
    parent_id: int | None
    depth: int


def all_dimensions(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(sys_dimension).order_by(sys_dimension.c.position,
                                                          sys_dimension.c.name))
    return [dict(r._mapping) for r in rows]


def create_dimension(session: Session, name: str, label: Mapping[str, str]) -> int:
    """A new tree with its root node; returns the root's id."""
    errors: dict[str, Any] = {}
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = Message("must start with a letter and use only a-z, 0-9 and _")
    elif session.execute(select(sys_dimension.c.name).where(sys_dimension.c.name == name)
                         ).first():
        errors["name"] = Message("'%(value)s' is already taken", value=name)
    if not isinstance(label, Mapping) or not all(
            isinstance(label.get(k), str) and label[k].strip() for k in ("en", "zh")):
        errors["label"] = Message("needs a name in both languages (en and zh)")
    if errors:
        raise ValidationFailed(errors)
    position = session.execute(select(func.count()).select_from(sys_dimension)).scalar_one()
    session.execute(insert(sys_dimension).values(name=name, label=dict(label),
                                                 position=position))
    return session.execute(insert(sys_dimension_node).returning(sys_dimension_node.c.id)
                           .values(dimension=name, parent_id=None, name=ROOT_LABEL["zh"],
                                   position=0)).scalar_one()


def nodes(session: Session, dimension: str) -> list[Node]:
    """The tree depth-first, root first."""
    n = sys_dimension_node
    rows = session.execute(select(n).where(n.c.dimension == dimension)
                           .order_by(n.c.position, n.c.id)).all()
    children: dict[int | None, list] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r)
    out: list[Node] = []

    def walk(parent: int | None, depth: int) -> None:
        for r in children.get(parent, []):
            out.append(Node(r.id, r.dimension, r.name, r.parent_id, depth))
            walk(r.id, depth + 1)

    walk(None, 0)
    return out


def offered_nodes(session: Session, actor: Actor, dimension: str) -> list[Node]:
    """The nodes a form offers a user: the part of the tree they hold (all of it for an
    administrator), so no one files a record where they could no longer see it."""
    found = nodes(session, dimension)
    if actor.is_admin:
        return found
    held = set(session.execute(permissions.dimension_nodes(actor.uid, dimension)).scalars())
    return [n for n in found if n.id in held]


def _node(session: Session, node_id: int):
    row = session.execute(select(sys_dimension_node).where(sys_dimension_node.c.id == node_id)
                          ).first()
    if row is None:
        raise RecordNotFound(f"dimension node {node_id} not found")
    return row


def add_node(session: Session, parent_id: int, name: str) -> int:
    parent = _node(session, parent_id)
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed({"name": Message("must be 1 to 100 characters")})
    position = session.execute(select(func.count()).select_from(sys_dimension_node).where(
        sys_dimension_node.c.parent_id == parent_id)).scalar_one()
    return session.execute(insert(sys_dimension_node).returning(sys_dimension_node.c.id)
                           .values(dimension=parent.dimension, parent_id=parent_id,
                                   name=name.strip(), position=position)).scalar_one()


def rename_node(session: Session, node_id: int, name: str) -> None:
    _node(session, node_id)
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed({"name": Message("must be 1 to 100 characters")})
    session.execute(update(sys_dimension_node).where(sys_dimension_node.c.id == node_id)
                    .values(name=name.strip()))


def delete_node(session: Session, node_id: int) -> None:
    row = _node(session, node_id)
    if row.parent_id is None:
        raise ValidationFailed({"node": Message("the root of a dimension cannot be deleted")})
    if session.execute(select(sys_dimension_node.c.id).where(
            sys_dimension_node.c.parent_id == node_id)).first():
        raise ValidationFailed({"node": Message("delete or move its children first")})
    session.execute(delete(sys_dimension_node).where(sys_dimension_node.c.id == node_id))
    permissions.forget_access(session)


def user_values(session: Session, user_id: int) -> dict[str, list[int]]:
    rows = session.execute(select(sys_dimension_node.c.dimension, sys_user_dimension.c.node_id)
                           .join(sys_dimension_node,
                                 sys_dimension_node.c.id == sys_user_dimension.c.node_id)
                           .where(sys_user_dimension.c.user_id == user_id)
                           .order_by(sys_user_dimension.c.node_id))
    out: dict[str, list[int]] = {}
    for dimension, node_id in rows:
        out.setdefault(dimension, []).append(node_id)
    return out


def set_user_values(session: Session, user_id: int, dimension: str,
                    node_ids: Iterable[int]) -> None:
    """The nodes of one dimension a user holds (their own and those they manage)."""
    wanted = sorted(set(node_ids))
    found = set(session.execute(select(sys_dimension_node.c.id).where(
        sys_dimension_node.c.id.in_(wanted), sys_dimension_node.c.dimension == dimension))
        .scalars())
    if len(found) != len(wanted):
        raise ValidationFailed({dimension: Message("no node %(id)s in dimension %(dimension)s",
                                                   id=next(i for i in wanted if i not in found),
                                                   dimension=dimension)})
    held = select(sys_dimension_node.c.id).where(sys_dimension_node.c.dimension == dimension)
    session.execute(delete(sys_user_dimension).where(sys_user_dimension.c.user_id == user_id,
                                                     sys_user_dimension.c.node_id.in_(held)))
    if wanted:
        session.execute(insert(sys_user_dimension),
                        [{"user_id": user_id, "node_id": n} for n in wanted])
    permissions.forget_access(session)


def default_values(session: Session, user_id: int | None,
                   obj: ObjectDef) -> dict[str, int]:
    """A new record's dimension fields default to the creator's first node of each."""
    if user_id is None or not obj.dimension_fields:
        return {}
    held = user_values(session, user_id)
    return {f.name: held[f.dimension_tree][0] for f in obj.dimension_fields
            if held.get(f.dimension_tree)}


# -- switching a dimension on for an object ---------------------------------------------
def field_name(dimension: str) -> str:
    return f"dim_{dimension}"


def switch(engine: Engine, obj: ObjectDef, dimension: str, on: bool, actor: str,
           signal: VersionSignal | None = None) -> int:
    """Add (or archive) the object's field for the dimension: a metadata change, applied
    with its schema change in one transaction like any other."""
    with Session(engine) as session:
        found = session.execute(select(sys_dimension.c.label).where(
            sys_dimension.c.name == dimension)).first()
    if found is None:
        raise ValidationFailed({"dimension": Message("no dimension '%(value)s'",
                                                     value=str(dimension)[:63])})
    name = field_name(dimension)
    existing = obj.all_fields.get(name)
    if on:
        change = {"name": name, "type": "dimension", "dimension": dimension,
                  "label": dict(found.label), "indexed": True, "archived": False}
    elif existing is None:
        return 0
    else:
        change = {"name": name, "archived": True}
    return changes.change_object(engine, obj.key, {"fields": [change]}, actor,
                                  f"{'switch on' if on else 'switch off'} dimension "
                                  f"{dimension} for {obj.name}", signal)

