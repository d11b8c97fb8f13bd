"""The todo centre's catalogue (待办事项): one entry per kind of todo.

Built-in kinds are the approval tasks (待审核 / 已审核) and the rows of ``sys_todo``
(records assigned to the user, stage work); every reminder rule in the metadata adds
one. Each kind knows its label and scenes, and counts, lists a page and marks handled
for the users asked about: the viewer, or a manager's subordinates (查看下属的待办).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metacrm.engine.access import scopes
from metacrm.engine.actor import Actor
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.flows import approvals, reminders, todos
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_approval_task, sys_todo
from metacrm.metadata.labels import Label
from metacrm.metadata.reminders import SCENES, Reminder

__all__ = ["PAGE", "Scene", "TodoKind", "badges", "catalogue", "whose"]

PAGE = reminders.PAGE
_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Scene:
    name: str
    label: Label


@dataclass(frozen=True)
class Listing:
    items: list[dict[str, Any]]
    next: int | None  # offset of the next page


class TodoKind(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def label(self) -> Label: ...

    @property
    def scenes(self) -> tuple[Scene, ...]: ...

    @property
    def markable(self) -> frozenset[str]:
        """The scenes whose items can be marked handled."""

    @property
    def delegable(self) -> bool:
        """Whether a manager may look at (and act on) a subordinate's."""

    def counts(self, session: Session, registry: Registry, actor: Actor,
               users: Sequence[int]) -> dict[str, int]: ...

    def page(self, session: Session, registry: Registry, actor: Actor, scene: str,
             users: Sequence[int], offset: int = 0) -> Listing: ...

    def mark(self, session: Session, registry: Registry, actor: Actor, ids: Sequence[int],
             users: Sequence[int], handled: bool = True) -> int: ...


def _sliced(found: list[dict[str, Any]], offset: int) -> Listing:
    more = len(found) > offset + PAGE
    return Listing(found[offset:offset + PAGE], offset + PAGE if more else None)


@dataclass(frozen=True)
class ApprovalKind:
    """My active approval tasks, and those I decided: personal, never delegated."""

    name: str = "approvals"
    label: Label = Label("Pending approvals", "待审核")
    scenes: tuple[Scene, ...] = (Scene("pending", Label("To review", "待审核")),
                                 Scene("processed", Label("Reviewed", "已审核")))
    markable: frozenset[str] = frozenset()
    delegable: bool = False

    def counts(self, session, registry, actor, users):
        t = sys_approval_task
        row = session.execute(select(
            select(func.count()).select_from(t).where(
                t.c.user_id == actor.user_id, t.c.status == "active").scalar_subquery(),
            select(func.count()).select_from(t).where(
                t.c.user_id == actor.user_id,
                t.c.status.in_(approvals.DECIDED)).scalar_subquery())).one()
        return {"pending": row[0], "processed": row[1]}

    def page(self, session, registry, actor, scene, users, offset=0):
        if scene not in ("pending", "processed"):
            raise RecordNotFound(f"no scene '{scene[:40]}'")
        found = approvals.inbox(session, actor, scene, limit=offset + PAGE + 1)
        for item in found:
            item["approval_id"], item["due"] = item["id"], None
        return _sliced(found, offset)

    def mark(self, session, registry, actor, ids, users, handled=True):
        raise RecordNotFound("approvals are decided, not marked handled")


@dataclass(frozen=True)
class RowKind:
    """Rows of sys_todo of one kind: open, or handled by the user."""

    name: str
    label: Label
    scenes: tuple[Scene, ...] = (Scene("open", Label("Open", "待处理")),
                                 Scene("handled", Label("Handled", "已处理")))
    markable: frozenset[str] = frozenset({"open", "handled"})
    delegable: bool = True

    def counts(self, session, registry, actor, users):
        t = sys_todo
        mine = (t.c.user_id.in_(list(users)), t.c.kind == self.name)
        row = session.execute(select(
            select(func.count()).select_from(t).where(
                *mine, t.c.handled_at.is_(None)).scalar_subquery(),
            select(func.count()).select_from(t).where(
                *mine, t.c.handled_at.is_not(None)).scalar_subquery())).one()
        return {"open": row[0], "handled": row[1]}

    def page(self, session, registry, actor, scene, users, offset=0):
        if scene not in ("open", "handled"):
            raise RecordNotFound(f"no scene '{scene[:40]}'")
        found = todos.open_todos(session, users, kind=self.name, handled=scene == "handled",
                                 limit=PAGE + 1, offset=offset)
        for item in found:
            item["due"] = item["due_at"]
        return Listing(found[:PAGE], offset + PAGE if len(found) > PAGE else None)

    def mark(self, session, registry, actor, ids, users, handled=True):
        return todos.handle_many(session, users, self.name, ids, handled)


@dataclass(frozen=True)
class ReminderKind:
    """A metadata reminder rule: its scenes are queries, its marks sys_reminder_mark."""

    reminder: Reminder
    markable: frozenset[str] = frozenset({"due", "overdue"})
    delegable: bool = True

    @property
    def name(self) -> str:
        return self.reminder.key

    @property
    def label(self) -> Label:
        return self.reminder.rule.label

    @property
    def scenes(self) -> tuple[Scene, ...]:
        return tuple(Scene(s, self.reminder.rule.scenes[s]) for s in SCENES)

    def counts(self, session, registry, actor, users):
        return reminders.count_scenes(session, registry, self.reminder, users=users,
                                      actor=actor)

    def page(self, session, registry, actor, scene, users, offset=0):
        found = reminders.page(session, registry, self.reminder, scene, users=users,
                               actor=actor, offset=offset)
        for item in found.items:
            item["object"], item["record_id"] = self.reminder.object, item["id"]
        return Listing(found.items, found.next)

    def mark(self, session, registry, actor, ids, users, handled=True):
        if not handled:
            raise RecordNotFound("a reminder comes back by itself when its date moves")
        return reminders.mark_handled(session, registry, self.reminder, ids, users=users,
                                      actor=actor)


BUILT_IN: tuple[TodoKind, ...] = (
    ApprovalKind(),
    RowKind("assigned", Label("Assigned to me", "分配给我的")),
    RowKind("stage_work", Label("Stage work", "阶段工作")),
)


def catalogue(registry: Registry) -> dict[str, TodoKind]:
    """Every kind, in the order the todo centre lists them."""
    out: dict[str, TodoKind] = {k.name: k for k in BUILT_IN}
    out.update((r.key, ReminderKind(r)) for r in registry.reminders.values())
    return out


def whose(session: Session, actor: Actor, choice: str | None) -> list[int]:
    """The users whose todos are asked about: me (""), everyone below me ("all", with
    me) or one subordinate (their id). Anyone else: RecordNotFound."""
    me = actor.user_id
    if me is None:
        raise RecordNotFound("the system has no todos")
    if not choice or choice == "me":
        return [me]
    tree = list(session.execute(scopes.subordinates(me)).scalars())
    if choice == "all":
        return sorted(tree)
    if _ID.fullmatch(choice) and int(choice) in tree:
        return [int(choice)]
    raise RecordNotFound("not one of your subordinates")


def badges(session: Session, registry: Registry, actor: Actor) -> dict[str, int]:
    """The navigation's counts, in one statement: approvals, todos (approvals, open rows
    and the due items of the rules with ``badge: true``) and unread notifications."""
    assert actor.user_id is not None
    rules = [r for r in registry.reminders.values() if r.rule.badge]
    extra = reminders.due_counts(session, registry, rules, users=[actor.user_id],
                                 actor=actor)
    return todos.counts(session, actor.user_id, extra)
