"""Stage processes and approval flows as frozen dataclasses (pure: dict -> objects).

A definition is kept apart from its running instances (the engine's stage history and
approvals), as viewflow and SpiffWorkflow do: these objects only say what may happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from metacrm.metadata.labels import Label

STAGE_TYPES = ("open", "won", "lost")
APPROVER_TYPES = ("users", "role", "superior", "department_head", "superior_chain",
                  "submitter_chooses")
TRIGGERS = ("submit", "stage", "field_change")
EMPTY_POLICIES = ("auto_approve", "admin", "reject")
# When an approval flow sets fields on its record: submitted (and resubmitted), withdrawn,
# approved, rejected.
FIELD_UPDATES = ("on_submit", "on_withdraw", "on_approve", "on_reject")
# The roles every instance has, which flows may name without a template declaring them.
SUPER_ROLE, DEFAULT_ROLE = "super_admin", "member"


@dataclass(frozen=True)
class WorkItemDef:
    name: str
    key: str
    label: Label
    due_days: int | None = None


@dataclass(frozen=True)
class KeyEventDef:
    name: str
    key: str
    label: Label
    share: float = 0
    attachment: bool = False
    required: bool = True


@dataclass(frozen=True)
class StageDef:
    name: str
    key: str
    label: Label | None  # None: the stage field's option label
    type: str = "open"
    win_rate: float = 0
    required: tuple[str, ...] = ()
    work: tuple[WorkItemDef, ...] = ()
    key_events: tuple[KeyEventDef, ...] = ()
    approval: str | None = None
    reason_field: str | None = None

    @property
    def terminal(self) -> bool:
        return self.type != "open"

    def work_item(self, name: str) -> WorkItemDef | None:
        return next((w for w in self.work if w.name == name), None)

    def key_event(self, name: str) -> KeyEventDef | None:
        return next((e for e in self.key_events if e.name == name), None)


@dataclass(frozen=True)
class StageProcessDef:
    name: str
    key: str
    label: Label
    object: str
    field: str
    stages: tuple[StageDef, ...]
    win_rate_field: str | None = None
    business_types: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    description: Label | None = None
    start_stages: tuple[str, ...] = ()  # where a new record may start besides the first

    @cached_property
    def by_name(self) -> dict[str, StageDef]:
        return {s.name: s for s in self.stages}

    @cached_property
    def position(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.stages)}

    def stage(self, name: str | None) -> StageDef | None:
        return self.by_name.get(name or "")

    @property
    def open_stages(self) -> tuple[StageDef, ...]:
        return tuple(s for s in self.stages if not s.terminal)

    @property
    def first(self) -> StageDef:
        return self.open_stages[0] if self.open_stages else self.stages[0]

    @property
    def starts(self) -> tuple[StageDef, ...]:
        """The stages a new record may start in: the first open one, and those the
        process lets its creator choose."""
        return (self.first, *(s for s in self.stages if s.name in self.start_stages
                              and s is not self.first))

    def terminal_of(self, kind: str) -> StageDef | None:
        return next((s for s in self.stages if s.type == kind), None)

    @property
    def is_default(self) -> bool:
        """For every record of the object not claimed by a more specific process."""
        return not self.business_types and not self.departments

    def applies_to(self, business_type: str | None, departments: Iterable[str]) -> bool:
        if self.business_types and business_type not in self.business_types:
            return False
        return not self.departments or not set(self.departments).isdisjoint(departments)


@dataclass(frozen=True)
class ApproverDef:
    type: str
    users: tuple[str, ...] = ()
    role: str | None = None
    level: int | None = None


@dataclass(frozen=True)
class StepDef:
    name: str
    key: str
    label: Label
    approvers: ApproverDef
    mode: str = "any"
    if_empty: str = "admin"


@dataclass(frozen=True)
class ApprovalFlowDef:
    name: str
    key: str
    label: Label
    object: str
    steps: tuple[StepDef, ...]
    condition: str | None = None
    trigger: str = "submit"
    trigger_fields: tuple[str, ...] = ()
    resubmit: str = "from_start"
    on_approve: dict[str, Any] | None = None
    on_reject: dict[str, Any] | None = None
    on_submit: dict[str, Any] | None = None
    on_withdraw: dict[str, Any] | None = None
    description: Label | None = None
    # The submitter may be among the approvers (by role, hand-over, 加签, …); by default
    # he never decides his own request.
    submitter_may_approve: bool = False
    reject_comment_required: bool = False  # a rejection must say why

    def step(self, index: int) -> StepDef:
        return self.steps[index]

    @property
    def updated_fields(self) -> tuple[str, ...]:
        """Every field the flow sets (on submit, withdraw, approve or reject), once each:
        the approval engine owns them."""
        return tuple(dict.fromkeys(name for when in FIELD_UPDATES
                                   for name in getattr(self, when) or {}))

    @property
    def chosen_steps(self) -> tuple[StepDef, ...]:
        """The steps whose approvers the submitter picks (发起人自选)."""
        return tuple(s for s in self.steps if s.approvers.type == "submitter_chooses")


def _label(raw: dict | None, fallback: str) -> Label:
    return Label.of(raw, fallback)


def build_stage_process(raw: dict) -> StageProcessDef:
    stages = tuple(
        StageDef(
            name=s["name"], key=s.get("key", s["name"]),
            label=Label.of(s["label"]) if s.get("label") else None,
            type=s.get("type", "open"), win_rate=s["win_rate"],
            required=tuple(s.get("required", ())),
            work=tuple(WorkItemDef(w["name"], w.get("key", w["name"]), _label(w["label"], w["name"]),
                                   w.get("due_days")) for w in s.get("work", ())),
            key_events=tuple(KeyEventDef(e["name"], e.get("key", e["name"]),
                                         _label(e["label"], e["name"]), e.get("share", 0),
                                         e.get("attachment", False), e.get("required", True))
                             for e in s.get("key_events", ())),
            approval=s.get("approval"), reason_field=s.get("reason_field"))
        for s in raw["stages"])
    return StageProcessDef(
        name=raw["stage_process"], key=raw.get("key", raw["stage_process"]),
        label=_label(raw.get("label"), raw["stage_process"]), object=raw["object"],
        field=raw["field"], stages=stages, win_rate_field=raw.get("win_rate_field"),
        business_types=tuple(raw.get("business_types", ())),
        departments=tuple(raw.get("departments", ())),
        description=Label.of(raw["description"]) if raw.get("description") else None,
        start_stages=tuple(raw.get("start_stages", ())))


def build_approval_flow(raw: dict) -> ApprovalFlowDef:
    steps = tuple(
        StepDef(name=s["name"], key=s.get("key", s["name"]), label=_label(s.get("label"), s["name"]),
                approvers=ApproverDef(type=s["approvers"]["type"],
                                      users=tuple(s["approvers"].get("users", ())),
                                      role=s["approvers"].get("role"),
                                      level=s["approvers"].get("level")),
                mode=s.get("mode", "any"), if_empty=s.get("if_empty", "admin"))
        for s in raw["steps"])
    return ApprovalFlowDef(
        name=raw["approval_flow"], key=raw.get("key", raw["approval_flow"]),
        label=_label(raw.get("label"), raw["approval_flow"]), object=raw["object"],
        steps=steps, condition=raw.get("condition"), trigger=raw.get("trigger", "submit"),
        trigger_fields=tuple(raw.get("trigger_fields", ())),
        resubmit=raw.get("resubmit", "from_start"),
        on_approve=dict(raw["on_approve"]) if raw.get("on_approve") else None,
        on_reject=dict(raw["on_reject"]) if raw.get("on_reject") else None,
        on_submit=dict(raw["on_submit"]) if raw.get("on_submit") else None,
        on_withdraw=dict(raw["on_withdraw"]) if raw.get("on_withdraw") else None,
        description=Label.of(raw["description"]) if raw.get("description") else None,
        submitter_may_approve=bool(raw.get("submitter_may_approve", False)),
        reject_comment_required=bool(raw.get("reject_comment_required", False)))
