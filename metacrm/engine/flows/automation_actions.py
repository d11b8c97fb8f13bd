"""What an automation does: the catalogue of its actions (``set``, ``notify``).

``set`` writes through the records service as the system actor, entry ``automation``,
so the triggering user needs no permission on the other record, the audit entry names
the automation, and the hooks that keep engine-owned fields (stage, approval outcome,
computed) refuse them as they refuse anyone. ``notify`` renders the message in both
languages, its ``{field}`` placeholders as text the way a reader sees the value (an
option's label, a record's title, a user's name), never evaluated as a template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.actor import SYSTEM
from metacrm.engine.errors import ValidationFailed
from metacrm.engine.flows import approvers, notifications
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.metadata.automation_checks import CompiledAutomation
from metacrm.metadata.automations import PLACEHOLDER, NotifyDef, SetDef, notify_target
from metacrm.metadata.expressions import Expression
from metacrm.metadata.labels import LANGUAGES
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["ACTIONS", "OWNER", "Act", "render"]

OWNER = "automation"  # the records service's entry of an automation's writes
YES_NO = {"en": ("yes", "no"), "zh": ("是", "否")}


@dataclass(frozen=True)
class Act:
    """One automation acting on one record: ``values`` are what its expressions read."""

    session: Session
    registry: Registry
    obj: ObjectDef
    automation: CompiledAutomation
    row: Mapping[str, Any]
    values: Mapping[str, Any]
    actor_id: int | None  # who triggered it

    @property
    def via(self) -> str:
        return f"automation:{self.automation.ident}"


# -- set ------------------------------------------------------------------------------------
def _set(act: Act, action: Any, compiled: Mapping[str, Expression]) -> None:
    assert isinstance(action, SetDef)
    target, record_id = act.obj, act.row["id"]
    if action.lookup is not None:
        target = act.registry.object(act.obj.all_fields[action.lookup].target_object)
        record_id = act.row.get(action.lookup)
        if record_id is None:
            return  # nothing looked up: nothing to set
    values = {name: _value(name, value, compiled.get(name), act.values)
              for name, value in action.fields.items()}
    held = records.hold(act.session, act.registry, target, record_id, actor=SYSTEM, by=OWNER,
                        via=act.via)
    records.change(held, values)


def _value(name: str, constant: Any, expression: Expression | None,
           values: Mapping[str, Any]) -> Any:
    if expression is None:
        return constant
    try:
        return expression.evaluate(values)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValidationFailed({name: Message("could not be calculated: %(problem)s",
                                              problem=str(exc)[:100])}) from None


# -- notify ---------------------------------------------------------------------------------
def _notify(act: Act, action: Any, compiled: Mapping[str, Expression]) -> None:
    assert isinstance(action, NotifyDef)
    user_ids = [u for target in action.to for u in _recipients(act, target)]
    if not user_ids:
        return
    message = {lang: render(act.session, act.registry, act.obj, action.message.get(lang),
                            act.values, lang) for lang in LANGUAGES}
    notifications.notify(act.session, user_ids, "automation", actor_id=act.actor_id,
                         object_name=act.obj.name, record_id=act.row["id"],
                         params={"automation": act.automation.ident, "message": message})


def _recipients(act: Act, target: str) -> list[int]:
    kind, name = notify_target(target)
    if kind == "role":
        return approvers.role_members(act.session, name)
    if kind == "field":
        found = act.values.get(name)
        return [found] if isinstance(found, int) else []
    lookup, field = name.split(".", 1)
    record_id = act.values.get(lookup)
    if record_id is None:
        return []
    table = act.registry.table(act.obj.all_fields[lookup].target_object)
    found = act.session.execute(select(table.c[field]).where(table.c.id == record_id)).scalar()
    return [found] if isinstance(found, int) else []


def render(session: Session, registry: Registry, obj: ObjectDef, template: str,
           values: Mapping[str, Any], lang: str) -> str:
    """``template`` with each ``{field}`` replaced by the value as text, in ``lang``."""
    def text(match: Any) -> str:
        name = match.group(1)
        f = _field(registry, obj, name)
        return _as_text(session, registry, f, values.get(name), lang) if f else match.group(0)

    return PLACEHOLDER.sub(text, template)


def _field(registry: Registry, obj: ObjectDef, name: str) -> FieldDef | None:
    lookup, _, rest = name.partition(".")
    if not rest:
        return obj.queryable.get(name)
    hop = obj.queryable.get(lookup)
    target = registry.objects.get(hop.target or "") if hop is not None else None
    return target.queryable.get(rest) if target is not None else None


def _as_text(session: Session, registry: Registry, f: FieldDef, value: Any, lang: str) -> str:
    if value is None or value == "" or value == []:
        return ""
    if f.options:
        chosen = value if isinstance(value, list) else [value]
        labels = [o.label.get(lang) if (o := f.option(str(v))) else str(v) for v in chosen]
        return ("、" if lang == "zh" else ", ").join(labels)
    if f.kind.references == "user" and isinstance(value, int):
        return users.display_names(session, {value}).get(value, str(value))
    if f.kind.references == "target" and isinstance(value, int):
        target = registry.objects.get(f.target or "")
        if target is not None:
            table = registry.table(target)
            title = session.execute(select(table.c[target.title_field])
                                    .where(table.c.id == value)).scalar()
            return str(title) if title is not None else ""
    if isinstance(value, bool):
        return YES_NO.get(lang, YES_NO["en"])[0 if value else 1]
    if isinstance(value, Decimal):
        return format(value, ",f")
    if isinstance(value, dt.datetime):
        return value.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


ACTIONS: dict[str, Callable[[Act, Any, Mapping[str, Expression]], None]] = {
    "set": _set,
    "notify": _notify,
}
