"""Automations compiled and cross-checked: what ``metacrm validate`` says about them.

``compile_automation`` is used twice, like ``computed.compile_object``: here, to report
every problem with its path, and by the engine's registry, for the expressions it runs.
The loop check (``automation_loops``) refuses automations that would trigger each other
without end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from metacrm.metadata import expressions as ex
from metacrm.metadata.automation_loops import find_loops
from metacrm.metadata.automations import (
    PLACEHOLDER,
    TRIGGERS,
    AutomationDef,
    NotifyDef,
    SetDef,
    expression_of,
    notify_target,
)
from metacrm.metadata.computed import Names, compile_object, value_type
from metacrm.metadata.expressions import Expression, ExpressionError
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.flows import build_approval_flow, build_stage_process
from metacrm.metadata.loader import Document, TemplateSet
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.metadata.owned import owned_fields
from metacrm.metadata.problems import Problem

__all__ = ["CompiledAutomation", "check_automations", "compile_automation"]

# Why an engine-owned field cannot be set, by what owns it (owned.ENGINE_OWNERS).
OWNED = {
    "computed": lambda name: Message("'%(name)s' is computed by the engine (formula, "
                                     "roll-up or auto-number)", name=name),
    "stages": lambda name: Message("'%(name)s' changes only by moving the record along its "
                                   "stage path", name=name),
    "approvals": lambda name: Message("'%(name)s' is set by an approval flow", name=name),
}


@dataclass(frozen=True)
class CompiledAutomation:
    """An automation with its expressions compiled once per registry version."""

    object: str
    definition: AutomationDef
    condition: Expression | None
    values: tuple[dict[str, Expression], ...]  # per action: field -> its expression

    @property
    def ident(self) -> str:
        return f"{self.object}.{self.definition.name}"

    @property
    def sets_own_record(self) -> bool:
        return any(isinstance(a, SetDef) and a.lookup is None for a in self.definition.actions)

    @property
    def names(self) -> frozenset[str]:
        """Every name the condition, the values and the messages read on the record."""
        found = set(self.condition.names) if self.condition else set()
        for values in self.values:
            for e in values.values():
                found.update(e.names)
        for action in self.definition.actions:
            if isinstance(action, NotifyDef):
                for text in (action.message.en, action.message.zh):
                    found.update(PLACEHOLDER.findall(text))
        return frozenset(found)


def compile_automation(obj: ObjectDef, automation: AutomationDef,
                       objects: Mapping[str, ObjectDef],
                       settings: Mapping[str, tuple[str, Any]] | None = None
                       ) -> CompiledAutomation:
    """Compile the condition and the values given as expressions (ExpressionError when
    one does not check); each value must give its target field's type. ``settings``:
    what ``setting("name")`` reads."""
    names = Names(obj, objects)
    condition = ex.compile_expression(automation.condition, names, expect=ex.BOOLEAN,
                                      settings=settings) if automation.condition else None
    values: list[dict[str, Expression]] = []
    for action in automation.actions:
        compiled: dict[str, Expression] = {}
        if isinstance(action, SetDef):
            target = set_target(obj, action, objects)
            for name, value in action.fields.items():
                source = expression_of(value)
                if source is not None and target is not None:
                    compiled[name] = _compile_value(source, names, target.all_fields[name],
                                                    settings)
        values.append(compiled)
    return CompiledAutomation(obj.name, automation, condition, tuple(values))


def set_target(obj: ObjectDef, action: SetDef, objects: Mapping[str, ObjectDef]
               ) -> ObjectDef | None:
    """The object a set action writes: the record's, or its lookup's target."""
    if action.lookup is None:
        return obj
    f = obj.all_fields.get(action.lookup)
    return objects.get(f.target or "") if f is not None else None


def _compile_value(source: str, names: Mapping[str, str], f: FieldDef,
                   settings: Mapping[str, tuple[str, Any]] | None = None) -> Expression:
    return ex.compile_expression(source, names, expect=_expected(f), settings=settings)


def _expected(f: FieldDef) -> str | None:
    """The type a value for ``f`` must have (lists and references are not typed)."""
    expect = value_type(f)
    return None if expect in (ex.LIST, ex.ID) else expect


# -- validate ------------------------------------------------------------------------------
def check_automations(templates: TemplateSet, objects: dict[str, ObjectDef],
                      roles: set[str] | None,
                      settings: Mapping[str, tuple[str, Any]] | None = None) -> list[Problem]:
    """Every problem of the set's automations. ``objects``: the objects whose fields are
    known (built from the set, or installed); ``roles``: None skips the role check."""
    stage_docs = [d for d in templates.of_kind("stage_process") if not d.partial]
    flow_docs = [d for d in templates.of_kind("approval_flow") if not d.partial]
    processes = [build_stage_process(d.content) for d in stage_docs]
    flows = [build_approval_flow(d.content) for d in flow_docs]
    # Stages and flows are judged when the set holds flows; an object folder validated
    # on its own does not know them.
    flows_known = bool(templates.of_kind("stage_process") or templates.of_kind("approval_flow"))
    context = _Context(objects, processes, flows, flows_known, roles,
                       owned_fields(objects, processes, flows), settings or {})
    problems: list[Problem] = []
    located: dict[str, tuple[Document, int]] = {}
    for doc in templates.of_kind("object"):
        obj = objects.get(doc.name)
        if obj is None or doc.partial or not obj.automations:
            continue
        checker = _Checker(doc, obj, context)
        problems.extend(checker.run())
        for i, automation in enumerate(obj.automations):
            located[f"{obj.name}.{automation.name}"] = (doc, i)
    if not problems:
        for ident, cycle in find_loops(objects, context.compiled_fields):
            doc, i = located[ident]
            problems.append(Problem("automation.loop", doc.source,
                                    doc.where(["automations", i, "trigger"]),
                                    Message("automations trigger each other in a loop: "
                                            "%(cycle)s; narrow a trigger to the fields it "
                                            "needs (field_changed)", cycle=" → ".join(cycle))))
    return problems


@dataclass
class _Context:
    objects: dict[str, ObjectDef]
    processes: list
    flows: list
    flows_known: bool
    roles: set[str] | None
    owned: dict[str, dict[str, str]]
    settings: Mapping[str, tuple[str, Any]]

    def compiled_fields(self, obj: ObjectDef) -> dict[str, frozenset[str]]:
        """The formulas of ``obj`` and the fields each reads (for the loop check)."""
        return {f.name: e.names for f, e in
                compile_object(obj, self.objects, self.settings).logic.formulas}


class _Checker:
    """Checks the automations of one object document."""

    def __init__(self, doc: Document, obj: ObjectDef, context: _Context):
        self.doc, self.obj, self.context = doc, obj, context
        self.names = Names(obj, context.objects)
        self.problems: list[Problem] = []

    def problem(self, code: str, path: list, message: str) -> None:
        self.problems.append(Problem(code, self.doc.source, self.doc.where(path), message))

    def run(self) -> list[Problem]:
        counts = Counter(a.name for a in self.obj.automations)
        for i, automation in enumerate(self.obj.automations):
            path: list[str | int] = ["automations", i]
            if counts[automation.name] > 1:
                self.problem("automation.duplicate", [*path, "name"],
                             Message("automation '%(name)s' is defined twice",
                                     name=automation.name))
            self._trigger(automation, [*path, "trigger"])
            if automation.condition:
                self._expression(automation.condition, [*path, "condition"], ex.BOOLEAN)
            for j, action in enumerate(automation.actions):
                if isinstance(action, SetDef):
                    self._set(action, [*path, "actions", j, "set"])
                else:
                    self._notify(action, [*path, "actions", j, "notify"])
        return self.problems

    def _expression(self, source: str, path: list, expect: str | None) -> None:
        try:
            ex.compile_expression(source, self.names, expect=expect,
                                  settings=self.context.settings)
        except ExpressionError as exc:
            self.problem("automation.expression", path, exc.message)

    def _not_a_field(self, name: str, obj: ObjectDef) -> Message:
        return Message("'%(name)s' is not a field of %(object)s", name=name, object=obj.name)

    def _trigger(self, automation: AutomationDef, path: list) -> None:
        trigger = automation.trigger
        wants = TRIGGERS[trigger.event]
        given = {"fields": trigger.fields, "stages": trigger.stages, "flows": trigger.flows}
        for key, values in given.items():
            if values and key != wants:
                self.problem("automation.trigger", [*path, key],
                             Message("a %(event)s trigger takes no '%(key)s'",
                                     event=trigger.event, key=key))
        if wants in ("fields", "stages") and not given[wants]:
            self.problem("automation.trigger", path,
                         Message("a %(event)s trigger needs '%(key)s'", event=trigger.event,
                                 key=wants))
        for i, name in enumerate(trigger.fields):
            if name not in self.obj.queryable:
                self.problem("automation.field", [*path, "fields", i],
                             self._not_a_field(name, self.obj))
        if self.context.flows_known:
            self._stages(trigger.stages, [*path, "stages"])
            self._flows(trigger.flows, [*path, "flows"])

    def _stages(self, stages: Iterable[str], path: list) -> None:
        known = {s.name for p in self.context.processes if p.object == self.obj.name
                 for s in p.stages}
        for i, name in enumerate(stages):
            if name not in known:
                self.problem("automation.stage", [*path, i],
                             Message("'%(name)s' is not a stage of a stage process of "
                                     "%(object)s", name=name, object=self.obj.name))

    def _flows(self, flows: Iterable[str], path: list) -> None:
        known = {f.name for f in self.context.flows if f.object == self.obj.name}
        for i, name in enumerate(flows):
            if name not in known:
                self.problem("automation.flow", [*path, i],
                             Message("'%(name)s' is not an approval flow of %(object)s",
                                     name=name, object=self.obj.name))

    def _set(self, action: SetDef, path: list) -> None:
        target = set_target(self.obj, action, self.context.objects)
        if action.lookup is not None:
            f = self.obj.all_fields.get(action.lookup)
            if f is None or f.archived or f.type != "lookup":
                self.problem("automation.lookup", [*path, "lookup"],
                             Message("'%(name)s' is not a lookup field of %(object)s",
                                     name=action.lookup, object=self.obj.name))
                return
        if target is None:
            return  # an object outside the set: its fields are not known here
        owned = self.context.owned.get(target.name, {})
        for name, value in action.fields.items():
            where = [*path, "fields", name]
            f = target.all_fields.get(name)
            if f is None or f.archived or not f.stored:
                self.problem("automation.field", where, self._not_a_field(name, target))
            elif name in owned:
                self.problem("automation.owned", where, OWNED[owned[name]](name))
            elif (source := expression_of(value)) is not None:
                self._expression(source, where, _expected(f))
            elif value is not None:
                try:
                    f.kind.coerce(value, f)
                except InvalidValue as exc:
                    self.problem("automation.value", where, exc.message)

    def _notify(self, action: NotifyDef, path: list) -> None:
        for i, target in enumerate(action.to):
            kind, name = notify_target(target)
            if kind == "role":
                if self.context.roles is not None and name not in self.context.roles:
                    self.problem("automation.notify", [*path, "to", i],
                                 Message("role '%(role)s' does not exist", role=name))
                continue
            if not self._user_field(name):
                self.problem("automation.notify", [*path, "to", i],
                             Message("'%(name)s' is not a user field of %(object)s, a role "
                                     "(role:<name>) or a lookup's user field "
                                     "(customer.owner)", name=name, object=self.obj.name))
        for lang in ("en", "zh"):
            for name in PLACEHOLDER.findall(action.message.get(lang)):
                if name not in self.names:
                    self.problem("automation.message", [*path, "message", lang],
                                 Message("'{%(name)s}' is not a field of %(object)s",
                                         name=name, object=self.obj.name))

    def _user_field(self, name: str) -> bool:
        lookup, _, rest = name.partition(".")
        if not rest:
            f = self.obj.queryable.get(name)
            return f is not None and f.kind.references == "user"
        hop = self.obj.queryable.get(lookup)
        target = self.context.objects.get(hop.target or "") if hop is not None else None
        if hop is None or hop.type != "lookup":
            return False
        if target is None:
            return True  # an object outside the set
        f = target.queryable.get(rest)
        return f is not None and f.kind.references == "user"
