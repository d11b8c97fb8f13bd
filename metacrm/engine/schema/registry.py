"""The registry: every active definition of one metadata version, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, Table

from metacrm.engine.errors import ObjectNotFound
from metacrm.engine.schema.tables import build_tables
from metacrm.metadata import expressions as ex
from metacrm.metadata.automation_checks import CompiledAutomation, compile_automation
from metacrm.metadata.computed import (
    Names,
    ObjectLogic,
    Rollup,
    compile_object,
    with_looked_up_options,
)
from metacrm.metadata.expressions import Expression
from metacrm.metadata.flows import (
    ApprovalFlowDef,
    StageProcessDef,
    build_approval_flow,
    build_stage_process,
)
from metacrm.metadata.model import (
    NavGroup,
    ObjectDef,
    PicklistDef,
    build_manifest,
    build_object,
    build_picklist,
)
from metacrm.metadata.owned import ENGINE_OWNERS, owned_fields
from metacrm.metadata.settings import SettingDef, build_setting, expression_settings

__all__ = ["ENGINE_OWNERS", "Registry", "build_registry", "owned_fields"]


@dataclass(frozen=True)
class Registry:
    version: int
    objects: dict[str, ObjectDef]
    picklists: dict[str, PicklistDef]
    groups: tuple[NavGroup, ...]
    metadata: MetaData = field(repr=False)
    tables: dict[str, Table] = field(repr=False)
    logic: dict[str, ObjectLogic] = field(default_factory=dict, repr=False)
    # child object → (parent object, roll-up) pairs that summarise it
    rollups_over: dict[str, tuple[tuple[str, Rollup], ...]] = field(default_factory=dict,
                                                                    repr=False)
    # object → (object, lookup field, fields read through it) of formulas reading it
    readers: dict[str, tuple[tuple[str, str, frozenset[str]], ...]] = field(
        default_factory=dict, repr=False)

    stage_processes: dict[str, StageProcessDef] = field(default_factory=dict, repr=False)
    approval_flows: dict[str, ApprovalFlowDef] = field(default_factory=dict, repr=False)
    # approval flow -> its entry condition, compiled once
    flow_conditions: dict[str, Expression] = field(default_factory=dict, repr=False)
    # object -> the fields only the engine writes, each with its writer (ENGINE_OWNERS)
    owned: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    # object → computed field → every (object, field) its value is derived from
    inputs: dict[str, dict[str, frozenset[tuple[str, str]]]] = field(default_factory=dict,
                                                                       repr=False)
    # business settings (业务参数) by name, each with its effective value
    settings: dict[str, SettingDef] = field(default_factory=dict, repr=False)
    # object -> its active automations, compiled once
    automations: dict[str, tuple[CompiledAutomation, ...]] = field(default_factory=dict,
                                                                   repr=False)

    def setting(self, name: str) -> Any:
        """The value of a business setting (the admin's, else the template's default)."""
        return self.settings[name].value

    def processes_of(self, object_name: str) -> list[StageProcessDef]:
        return [p for p in self.stage_processes.values() if p.object == object_name]

    def flows_of(self, object_name: str, trigger: str | None = None) -> list[ApprovalFlowDef]:
        return [f for f in self.approval_flows.values() if f.object == object_name
                and (trigger is None or f.trigger == trigger)]

    def process_for(self, object_name: str, business_type: str | None,
                    departments: set[str]) -> StageProcessDef | None:
        """The process a record follows: its business type's, else its department's,
        else the object's default one."""
        found = self.processes_of(object_name)
        ranked = ([p for p in found if p.business_types and p.applies_to(business_type, departments)]
                  + [p for p in found if not p.business_types and p.departments
                     and p.applies_to(business_type, departments)]
                  + [p for p in found if p.is_default])
        return ranked[0] if ranked else None

    def automations_of(self, object_name: str, event: str | None = None
                       ) -> list[CompiledAutomation]:
        """The object's active automations (those a trigger ``event`` starts)."""
        return [a for a in self.automations.get(object_name, ())
                if event is None or a.definition.trigger.event == event]

    def owned_fields(self, object_name: str) -> dict[str, str]:
        """The fields no user path writes, each with what writes it: ``stages`` (the
        stage and win-rate fields), ``approvals`` (what an approval's outcome sets) or
        ``computed`` (formulas, roll-ups, auto-numbers)."""
        return self.owned.get(object_name, {})

    def logic_of(self, obj: ObjectDef) -> ObjectLogic:
        return self.logic.get(obj.name) or ObjectLogic()

    def object(self, name: str) -> ObjectDef:
        obj = self.objects.get(name)
        if obj is None or obj.archived:
            raise ObjectNotFound(f"no object named '{name[:63]}'")
        return obj

    def table(self, obj: ObjectDef | str) -> Table:
        return self.tables[obj if isinstance(obj, str) else obj.name]

    @property
    def active_objects(self) -> list[ObjectDef]:
        return [o for o in self.objects.values() if not o.archived]

    def referrers(self, target: str) -> list[tuple[ObjectDef, str]]:
        """(object, field) pairs whose lookups point at ``target``: its related lists."""
        return [(o, f.name) for o in self.active_objects for f in o.active_fields
                if f.target == target]


def build_registry(version: int, documents: list[tuple[str, dict]]) -> Registry:
    """Build from effective (base merged with overlay) documents: ``(kind, content)``."""
    picklists = {}
    for kind, content in documents:
        if kind == "picklist":
            picklist = build_picklist(content)
            picklists[picklist.name] = picklist
    objects = {}
    groups: list[NavGroup] = []
    for kind, content in documents:
        if kind == "object":
            obj = build_object(content, picklists)
            objects[obj.name] = obj
        elif kind == "template":
            groups.extend(g for g in build_manifest(content).groups
                          if g.name not in {x.name for x in groups})
    objects = with_looked_up_options(objects)
    metadata, tables = build_tables(objects)
    settings = {s.name: s for s in (build_setting(c) for k, c in documents if k == "setting")}
    bound = expression_settings(settings.values())
    logic = {name: compile_object(obj, objects, bound).logic for name, obj in objects.items()
             if not obj.archived}
    rollups_over: dict[str, list] = {}
    readers: dict[str, list] = {}
    for name, found in logic.items():
        for rollup in found.rollups:
            rollups_over.setdefault(rollup.child, []).append((name, rollup))
        formula_hops = ObjectLogic(formulas=found.formulas).hops
        for lookup, read in formula_hops.items():
            target = objects[name].all_fields[lookup].target_object
            readers.setdefault(target, []).append((name, lookup, read))
    processes = {p.name: p for p in (build_stage_process(c) for k, c in documents
                                     if k == "stage_process") if p.object in objects}
    flows = {f.name: f for f in (build_approval_flow(c) for k, c in documents
                                 if k == "approval_flow") if f.object in objects}
    conditions = {f.name: ex.compile_expression(f.condition, Names(objects[f.object], objects),
                                                expect=ex.BOOLEAN, settings=bound)
                  for f in flows.values() if f.condition}
    return Registry(version, dict(sorted(objects.items())), picklists, tuple(groups),
                    metadata, tables, logic,
                    {k: tuple(v) for k, v in rollups_over.items()},
                    {k: tuple(v) for k, v in readers.items()},
                    dict(sorted(processes.items())), dict(sorted(flows.items())), conditions,
                    owned_fields(objects, processes.values(), flows.values()),
                    _inputs(objects, logic), dict(sorted(settings.items())),
                    _automations(objects, bound))


def _automations(objects: dict[str, ObjectDef], settings: dict[str, tuple[str, Any]]
                 ) -> dict[str, tuple[CompiledAutomation, ...]]:
    return {name: tuple(compile_automation(obj, a, objects, settings) for a in obj.automations
                        if a.active)
            for name, obj in objects.items() if not obj.archived and obj.automations}


def _inputs(objects: dict[str, ObjectDef], logic: dict[str, ObjectLogic]
            ) -> dict[str, dict[str, frozenset[tuple[str, str]]]]:
    """What each formula and roll-up is computed from, followed through other computed
    fields and lookups to the end: (object, field) pairs."""
    direct: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for name, found in logic.items():
        obj = objects[name]
        for f, expression in found.formulas:
            reads = direct.setdefault((name, f.name), set())
            for used in expression.names:
                lookup, _, target_field = used.partition(".")
                reads.add((name, lookup))
                if target_field and lookup in obj.all_fields:
                    reads.add((obj.all_fields[lookup].target_object, target_field))
        for rollup in found.rollups:
            reads = direct.setdefault((name, rollup.field.name), set())
            if rollup.summed is not None:
                reads.add((rollup.child, rollup.summed))
            if rollup.filter is not None:
                reads.update((rollup.child, n) for n in rollup.filter.names)
    out: dict[str, dict[str, frozenset[tuple[str, str]]]] = {}
    for key, first in direct.items():
        seen: set[tuple[str, str]] = set()
        todo = list(first)
        while todo:
            item = todo.pop()
            if item not in seen:
                seen.add(item)
                todo.extend(direct.get(item, ()))
        out.setdefault(key[0], {})[key[1]] = frozenset(seen)
    return out
