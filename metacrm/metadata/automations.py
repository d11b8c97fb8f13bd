"""Automations on an object (``automations:``): when a record is written, do something.

An automation has a trigger (one entry of ``TRIGGERS``), an optional condition on the
record as it is after the change, and actions: set fields on the record or
on the record one lookup away (``lookup: customer``), or notify users with a ``{en, zh}``
message whose ``{field}`` placeholders are filled from the record. ``metacrm validate``
checks them (``automation_checks``); the engine runs them in the write's transaction
(``metacrm.engine.flows.automations``).

A value to set is a constant (``deal_status: closed``), or an expression when it starts
with ``=`` as in a spreadsheet (``last_deal_amount: "=amount"``), read on the record
that triggered the automation. (The keys avoid ``on:``, which YAML 1.1 reads as ``True``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metacrm.metadata.labels import Label

__all__ = ["APPROVAL_TRIGGERS", "EXPRESSION_MARK", "PLACEHOLDER", "TRIGGERS",
           "AutomationDef", "NotifyDef", "SetDef", "TriggerDef", "build_automations",
           "expression_of", "notify_target"]

# What starts an automation, and the list its trigger narrows it by (if any).
TRIGGERS: dict[str, str | None] = {
    "created": None, "updated": None, "field_changed": "fields", "stage_entered": "stages",
    "approval_approved": "flows", "approval_rejected": "flows", "approval_withdrawn": "flows",
}
APPROVAL_TRIGGERS = {"approval_approved": "approved", "approval_rejected": "rejected",
                     "approval_withdrawn": "withdrawn"}  # trigger -> the approval's outcome
EXPRESSION_MARK = "="
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)\}")
ROLE_PREFIX = "role:"


@dataclass(frozen=True)
class TriggerDef:
    event: str  # an entry of TRIGGERS
    fields: tuple[str, ...] = ()  # field_changed: any of them changed
    stages: tuple[str, ...] = ()  # stage_entered: the record entered one of them
    flows: tuple[str, ...] = ()  # approval_*: of these flows (empty: any)


@dataclass(frozen=True)
class SetDef:
    """Set ``fields`` on the record, or on the record its ``lookup`` field names."""

    fields: Mapping[str, Any]
    lookup: str | None = None
    kind: str = "set"


@dataclass(frozen=True)
class NotifyDef:
    """Tell ``to`` (``owner``, a user field, ``role:<role>``, ``<lookup>.<user field>``)."""

    to: tuple[str, ...]
    message: Label
    kind: str = "notify"


@dataclass(frozen=True)
class AutomationDef:
    name: str
    key: str
    label: Label
    trigger: TriggerDef
    actions: tuple[SetDef | NotifyDef, ...]
    condition: str | None = None
    active: bool = True


def build_automations(raw: list[dict]) -> tuple[AutomationDef, ...]:
    return tuple(_build(a) for a in raw)


def _build(raw: dict) -> AutomationDef:
    trigger = raw["trigger"]
    return AutomationDef(
        name=raw["name"], key=raw.get("key", raw["name"]),
        label=Label.of(raw.get("label"), raw["name"]),
        trigger=TriggerDef(event=trigger["event"], fields=tuple(trigger.get("fields", ())),
                           stages=tuple(trigger.get("stages", ())),
                           flows=tuple(trigger.get("flows", ()))),
        actions=tuple(_action(a) for a in raw["actions"]),
        condition=raw.get("condition"), active=raw.get("active", True))


def _action(raw: dict) -> SetDef | NotifyDef:
    if "set" in raw:
        return SetDef(fields=dict(raw["set"]["fields"]), lookup=raw["set"].get("lookup"))
    spec = raw["notify"]
    return NotifyDef(to=tuple(spec["to"]), message=Label.of(spec["message"]))


def expression_of(value: Any) -> str | None:
    """The expression a value to set holds (``"=amount"``), or None for a constant."""
    if isinstance(value, str) and value.startswith(EXPRESSION_MARK):
        return value[len(EXPRESSION_MARK):]
    return None


def notify_target(target: str) -> tuple[str, str]:
    """A ``to`` entry as (kind, name): ``("role", "finance")``, ``("hop", "customer.owner")``
    or ``("field", "owner")``."""
    if target.startswith(ROLE_PREFIX):
        return "role", target[len(ROLE_PREFIX):]
    return ("hop" if "." in target else "field"), target
