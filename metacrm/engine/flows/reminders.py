"""Reminder items, computed on read: each scene of a rule is one SQL query.

No item is stored. A scene is the rule's object table narrowed by the recipients (the
owner, a user field or the team members, among the users asked about), the viewer's
read scope, the date window around ``clock.today()`` in the instance's zone, the
rule's condition, done or not done, and no handled mark (标记为已处理) for the same due
value: a mark never changes the record, and a new due date brings the item back.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from metacrm import clock
from metacrm.engine.access import permissions
from metacrm.engine.actor import SYSTEM, Actor
from metacrm.engine.db import conflict_insert
from metacrm.engine.errors import RecordNotFound
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_notification, sys_reminder_mark, sys_team_member
from metacrm.engine.writing.expression_sql import to_sql
from metacrm.metadata.reminders import SCENES, Reminder

__all__ = ["PAGE", "RECENT_DAYS", "Page", "count_scenes", "due_counts", "mark_handled",
           "notify_due", "page"]

PAGE = 50
RECENT_DAYS = 30  # the done scene looks this far back
COLON = {"en": ": ", "zh": "："}  # between the rule's label and the title, as each writes it


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: int | None  # the offset of the next page


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), clock.zone()).astimezone(dt.UTC)


def _between(r: Reminder, column: Any, first: dt.date | None, last: dt.date | None
             ) -> ColumnElement:
    """The field's day (in the instance's zone) lies in [first, last]; None: open."""
    parts = []
    if r.timed:
        if first is not None:
            parts.append(column >= _day_start(first))
        if last is not None:
            parts.append(column < _day_start(last + dt.timedelta(days=1)))
    else:
        if first is not None:
            parts.append(column >= first)
        if last is not None:
            parts.append(column <= last)
    return and_(*parts)


def _window(r: Reminder, column: Any, scene: str, today: dt.date) -> ColumnElement:
    """due: today lies in [date + offset, date]; overdue: the date is past; done: from
    RECENT_DAYS ago to the end of the due window; open (to mark): due or overdue."""
    ahead = today - dt.timedelta(days=r.offset)
    return {
        "due": lambda: _between(r, column, today, ahead),
        "overdue": lambda: _between(r, column, None, today - dt.timedelta(days=1)),
        "done": lambda: _between(r, column, today - dt.timedelta(days=RECENT_DAYS), ahead),
        "open": lambda: _between(r, column, None, ahead),
    }[scene]()


def _recipient_in(column: Any, users: Sequence[int]) -> ColumnElement:
    return column == users[0] if len(users) == 1 else column.in_(list(users))


def scene_query(session: Session, registry: Registry, r: Reminder, scene: str, *,
                users: Sequence[int] | None, actor: Actor, columns: Sequence[Any] = ()
                ) -> tuple[Select, Any, Any]:
    """The scene's rows: (statement, the table, the recipient column). ``users`` None:
    every recipient (jobs)."""
    obj = registry.object(r.object)
    t = registry.table(obj)
    source, recipient, where = _scene_parts(t, r, scene, clock.today())
    stmt = select(*columns).select_from(source).where(*where)
    if users is not None:
        stmt = stmt.where(_recipient_in(recipient, users))
    if actor.user_id is not None:  # a job (SYSTEM) reads every record
        stmt = stmt.where(permissions.condition(session, actor, obj, t, "read"))
    return stmt, t, recipient


def _scene_parts(t: Any, r: Reminder, scene: str, today: dt.date
                 ) -> tuple[Any, Any, list[ColumnElement]]:
    """What a scene reads and its conditions, but for the users and the read scope:
    built once a day per table version (building costs more than running the query)."""
    # The day's start stands for the zone; a rule reading now() is built every time.
    key = None if _reads_now(r) else (t, r.key, scene, today, _day_start(today))
    found = _PARTS.get(key) if key is not None else None
    if found is not None:
        return found
    if len(_PARTS) >= MAX_CACHED_PARTS:
        _PARTS.clear()
    source, recipient = t, None
    where: list[ColumnElement] = [t.c.deleted == false(),
                                  _window(r, t.c[r.field.column], scene, today)]
    if r.rule.to == "team":
        tm = sys_team_member
        source = t.join(tm, and_(tm.c.object == r.object, tm.c.record_id == t.c.id))
        where.append(func.coalesce(tm.c.expires_on >= today, true()))
        recipient = tm.c.user_id
    else:
        recipient = t.c[r.rule.to]
    done = to_sql(r.done, lambda name: t.c[name]) if r.done is not None else false()
    if scene == "done":
        where.append(done)
    else:
        if r.condition is not None:
            where.append(to_sql(r.condition, lambda name: t.c[name]))
        where.append(not_(func.coalesce(done, false())))
        if scene != "open":
            where.append(~_marked(r, t, recipient))
    found = (source, recipient, where)
    if key is not None:
        _PARTS[key] = found
    return found


def _reads_now(r: Reminder) -> bool:
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "now"
               for e in (r.condition, r.done) if e is not None for node in ast.walk(e.tree))


_PARTS: dict[tuple, tuple[Any, Any, list[ColumnElement]]] = {}
MAX_CACHED_PARTS = 1024


def _marked(r: Reminder, t: Any, recipient: Any) -> ColumnElement:
    m = sys_reminder_mark
    same_due = (m.c.due_at if r.timed else m.c.due_date) == t.c[r.field.column]
    return exists().where(m.c.user_id == recipient, m.c.reminder == r.key,
                          m.c.record_id == t.c.id, same_due)


def page(session: Session, registry: Registry, r: Reminder, scene: str, *,
         users: Sequence[int], actor: Actor, offset: int = 0, limit: int = PAGE) -> Page:
    """One page of the scene, by due date then id: record id, title, owner, due value
    and the recipient."""
    if scene not in SCENES:
        raise RecordNotFound(f"no scene '{scene[:40]}'")
    obj = registry.object(r.object)
    t = registry.table(obj)
    due = t.c[r.field.column]
    stmt, t, recipient = scene_query(session, registry, r, scene, users=users, actor=actor)
    stmt = stmt.add_columns(t.c.id, t.c[obj.title_field].label("title"), t.c.owner,
                            due.label("due"), recipient.label("user_id"))
    # A team rule lists a record once per member asked about; else the id decides.
    order = (due, t.c.id, recipient) if r.rule.to == "team" else (due, t.c.id)
    stmt = stmt.order_by(*order).offset(max(offset, 0)).limit(limit + 1)
    result = session.execute(stmt)
    keys = list(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    more = len(rows) > limit
    return Page(rows[:limit], offset + limit if more else None)


def count_scenes(session: Session, registry: Registry, r: Reminder, *,
                 users: Sequence[int], actor: Actor) -> dict[str, int]:
    """Every scene's count, in one statement."""
    parts = [scene_query(session, registry, r, scene, users=users, actor=actor,
                         columns=[func.count()])[0].scalar_subquery() for scene in SCENES]
    found = session.execute(select(*parts)).one()
    return dict(zip(SCENES, found, strict=True))


def due_counts(session: Session, registry: Registry, rules: Sequence[Reminder], *,
               users: Sequence[int], actor: Actor) -> list[Any]:
    """The due scene's count of each rule, as scalar subqueries to select together
    (the navigation badge reads them in the same statement as the other counts)."""
    return [scene_query(session, registry, r, "due", users=users, actor=actor,
                        columns=[func.count()])[0].scalar_subquery() for r in rules]


def mark_handled(session: Session, registry: Registry, r: Reminder, record_ids: Sequence[int],
                 *, users: Sequence[int], actor: Actor) -> int:
    """标记为已处理: the items (due or overdue) of these records for the users asked about,
    marked with the record's due value, in one INSERT … SELECT. The record is not
    touched. Nothing found (another's record, not due): RecordNotFound."""
    ids = sorted({int(i) for i in record_ids})
    if not ids:
        raise RecordNotFound("no item named")
    stmt, t, recipient = scene_query(session, registry, r, "open", users=users, actor=actor)
    due_column = "due_at" if r.timed else "due_date"
    stamp = clock.now()
    chosen = stmt.add_columns(
        recipient, literal(r.key, String), t.c.id, t.c[r.field.column],
        literal(stamp, sys_reminder_mark.c.marked_at.type),
        literal(actor.user_id, sys_reminder_mark.c.marked_by.type),
    ).where(t.c.id.in_(ids))
    m = sys_reminder_mark
    upsert = conflict_insert(session, m).from_select(
        ["user_id", "reminder", "record_id", due_column, "marked_at", "marked_by"], chosen)
    upsert = upsert.on_conflict_do_update(
        index_elements=[m.c.user_id, m.c.reminder, m.c.record_id],
        set_={due_column: upsert.excluded[due_column], "marked_at": upsert.excluded.marked_at,
              "marked_by": upsert.excluded.marked_by})
    # RETURNING counts on both drivers (psycopg gives no rowcount for INSERT … SELECT).
    done = len(session.execute(upsert.returning(m.c.id)).all())
    if not done:
        raise RecordNotFound("no such item among the todos asked about")
    return done


def _as_text(session: Session, r: Reminder, column: Any) -> Any:
    """The due value as text for a dedupe key, the same on both databases."""
    if not r.timed:
        return cast(column, String)
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS')
    return func.strftime("%Y-%m-%dT%H:%M:%S", column)


def _message(session: Session, r: Reminder, title: Any) -> Any:
    """``{"reminder": key, "message": {<language>: "<rule label>: <title>", …}}``, one
    text per language of the rule's label."""
    pg = session.get_bind().dialect.name == "postgresql"
    build = func.jsonb_build_object if pg else func.json_object
    text = func.coalesce(cast(title, String), "")
    said = [part for lang, words in r.rule.label.as_dict().items()
            for part in (literal(lang, String),
                         literal(words + COLON.get(lang, ": "), String) + text)]
    return build(literal("reminder", String), literal(r.key, String),
                 literal("message", String), build(*said), type_=JSON)


def notify_due(session: Session, registry: Registry, at: dt.datetime | None = None
               ) -> dict[str, int]:
    """The job: for each rule with ``notify``, one notification per recipient of each
    item in the due scene, in one INSERT … SELECT per rule; the dedupe key (rule, record,
    due value) makes a second run, or a run after a crash, notify nobody twice."""
    found: dict[str, int] = {}
    with clock.frozen(at) if at is not None else nullcontext():
        for r in registry.reminders.values():
            if not r.rule.notify:
                continue
            stmt, t, recipient = scene_query(session, registry, r, "due", users=None,
                                             actor=SYSTEM)
            obj = registry.object(r.object)
            key = (literal(f"reminder:{r.key}:", String) + cast(t.c.id, String) +
                   literal(":", String) + _as_text(session, r, t.c[r.field.column]))
            chosen = stmt.add_columns(
                recipient, literal("reminder", String), literal(r.object, String), t.c.id,
                _message(session, r, t.c[obj.title_field]),
                literal(clock.now(), sys_notification.c.created_at.type), key)
            n = sys_notification
            add = conflict_insert(session, n).from_select(
                ["user_id", "kind", "object", "record_id", "params", "created_at",
                 "dedupe_key"], chosen).on_conflict_do_nothing()
            found[r.key] = len(session.execute(add.returning(n.c.id)).all())
    return found
