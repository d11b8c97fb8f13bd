"""Reminder rules (待办 in 千丝CRM): records whose date field comes due, compiled once.

A rule names a date or datetime field, how many days before it the item starts being
due (a number, or a business setting such as ``contract_expiry_days``), a condition and
a "done" condition in the expression language, and who gets the item. Nothing is
stored per item: the engine turns each scene into one SQL query, so both conditions
must compile to SQL (``expressions.check_sql``). ``compile_reminders`` serves
``metacrm validate`` (problems with their paths) and the registry (the compiled rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metacrm.metadata import expressions as ex
from metacrm.metadata.computed import Names
from metacrm.metadata.expressions import Expression, ExpressionError
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef, ReminderDef
from metacrm.metadata.settings import SettingDef, expression_settings

__all__ = ["SCENES", "Reminder", "compile_reminders"]

SCENES = ("due", "overdue", "done")  # the order the todo centre shows them in
DATE_STORAGE = ("date", "datetime")
TEAM, OWNER = "team", "owner"


@dataclass(frozen=True)
class Reminder:
    """One rule, ready for the engine: its field, offset in days (<= 0) and conditions."""

    object: str
    rule: ReminderDef
    field: FieldDef
    offset: int
    condition: Expression | None = None
    done: Expression | None = None

    @property
    def key(self) -> str:
        """How marks and notifications name it: ``<object>.<name>``."""
        return f"{self.object}.{self.rule.name}"

    @property
    def timed(self) -> bool:
        """A datetime field: compared against the instance zone's day bounds."""
        return self.field.kind.storage == "datetime"


Problems = list[tuple[str, list, Message]]


def compile_reminders(obj: ObjectDef, objects: Mapping[str, ObjectDef],
                      settings: Mapping[str, SettingDef]) -> tuple[list[Reminder], Problems]:
    """The object's rules that compile, and the problems of those that do not."""
    out: list[Reminder] = []
    problems: Problems = []
    bound = expression_settings(settings.values())
    names = Names(obj, objects, hops=False)
    seen: set[str] = set()
    for i, rule in enumerate(obj.reminders):
        path: list[Any] = ["reminders", i]
        if rule.name in seen:
            problems.append(("reminder.duplicate", [*path, "name"],
                             Message("reminder '%(name)s' is defined twice", name=rule.name)))
        seen.add(rule.name)
        found = _compile(obj, names, rule, path, settings, bound, problems)
        if found is not None:
            out.append(found)
    return out, problems


def _compile(obj: ObjectDef, names: Names, rule: ReminderDef, path: list,
             settings: Mapping[str, SettingDef], bound: Mapping[str, tuple[str, Any]],
             problems: Problems) -> Reminder | None:
    before = len(problems)
    field = obj.field(rule.field)
    if field is None:
        problems.append(("reminder.field", [*path, "field"],
                         Message("'%(name)s' is not a field of %(object)s", name=rule.field,
                                 object=obj.name)))
    elif field.kind.storage not in DATE_STORAGE:
        problems.append(("reminder.field", [*path, "field"],
                         Message("a reminder needs a date or datetime field, and '%(name)s' "
                                 "is a %(type)s field", name=rule.field, type=field.type)))
    offset = _offset(rule, path, settings, problems)
    _recipient(obj, rule, path, problems)
    condition = _expression(rule.condition, names, bound, [*path, "condition"], problems)
    done = _expression(rule.done, names, bound, [*path, "done"], problems)
    if len(problems) > before or field is None:
        return None
    return Reminder(obj.name, rule, field, offset, condition, done)


def _offset(rule: ReminderDef, path: list, settings: Mapping[str, SettingDef],
            problems: Problems) -> int:
    if rule.offset_setting is None:
        return rule.offset
    setting = settings.get(rule.offset_setting)
    if setting is None:
        problems.append(("reminder.offset", [*path, "offset", "setting"],
                         Message("unknown setting '%(name)s' (known: %(known)s)",
                                 name=rule.offset_setting,
                                 known=", ".join(sorted(settings)) or "-")))
        return 0
    if setting.type != "integer":
        problems.append(("reminder.offset", [*path, "offset", "setting"],
                         Message("setting '%(name)s' is a %(type)s; a reminder's offset "
                                 "needs an integer setting", name=setting.name,
                                 type=setting.type)))
        return 0
    return -abs(int(setting.value or 0))


def _recipient(obj: ObjectDef, rule: ReminderDef, path: list, problems: Problems) -> None:
    if rule.to == OWNER:
        return
    if rule.to == TEAM:
        if TEAM not in obj.features:
            problems.append(("reminder.to", [*path, "to"],
                             Message("'team' needs the object's team feature")))
        return
    field = obj.field(rule.to)
    if field is None or field.type != "user":
        problems.append(("reminder.to", [*path, "to"],
                         Message("'%(name)s' is not a user field of %(object)s (or owner, "
                                 "team)", name=rule.to, object=obj.name)))


def _expression(source: str | None, names: Names, bound: Mapping[str, tuple[str, Any]],
                path: list, problems: Problems) -> Expression | None:
    if not source:
        return None
    try:
        found = ex.compile_expression(source, names, expect=ex.BOOLEAN, settings=bound)
        ex.check_sql(found)
    except ExpressionError as exc:
        problems.append(("reminder.expression", path, exc.message))
        return None
    return found
