"""Cross-checks of stage processes and approval flows against the objects they name.

Each problem has a stable code and names the file and the path, like the object checks:
``flows/sample/large_deal.yaml: steps[1].approvers.role: role 'boss' does not exist``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from metacrm.metadata import expressions as ex
from metacrm.metadata.computed import Names
from metacrm.metadata.fieldtypes import InvalidValue
from metacrm.metadata.flows import DEFAULT_ROLE, FIELD_UPDATES, SUPER_ROLE
from metacrm.metadata.loader import Document, TemplateSet
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef
from metacrm.metadata.problems import Problem

NUMBER_STORAGE = ("integer", "decimal")
# The settings each approver type reads (the schema lists them all).
APPROVER_KEYS = {"users": ("users",), "role": ("role",), "superior": ("level",),
                 "department_head": ("level",), "superior_chain": ("level", "role"),
                 "submitter_chooses": ()}


def check_flows(templates: TemplateSet, objects: dict[str, ObjectDef], known_objects: set[str],
                known_roles: Iterable[str] | None,
                settings: Mapping[str, tuple[str, Any]] | None = None) -> list[Problem]:
    """Every problem of the set's stage processes and approval flows. ``objects``: the
    objects built from the set; ``known_objects``: installed ones whose fields are not
    known here; ``known_roles``: None skips the role check (roles live in the database)."""
    roles = known_roles_of(templates, known_roles)
    flows = {d.name: d for d in templates.of_kind("approval_flow")}
    problems: list[Problem] = []
    for kind in ("stage_process", "approval_flow"):
        counts = Counter(d.name for d in templates.of_kind(kind))
        for doc in templates.of_kind(kind):
            if counts[doc.name] > 1:
                problems.append(Problem(f"{kind}.duplicate", doc.source, kind,
                                        _duplicate_flow(kind, doc.name)))
    for doc in templates.of_kind("stage_process"):
        problems.extend(_Checker(doc, objects, known_objects).stage_process(flows))
    # The stage and win-rate fields change only by a stage move, so no outcome sets them.
    managed = {(d.content["object"], name) for d in templates.of_kind("stage_process")
               for name in (d.content["field"], d.content.get("win_rate_field")) if name}
    for doc in templates.of_kind("approval_flow"):
        problems.extend(_Checker(doc, objects, known_objects, settings or {})
                        .approval_flow(roles, managed))
    problems.extend(_overlapping_processes(templates.of_kind("stage_process")))
    return problems


def known_roles_of(templates: TemplateSet, known_roles: Iterable[str] | None
                   ) -> set[str] | None:
    """The roles flows may name: built in, known, declared by the set (None: unknown)."""
    if known_roles is None:
        return None
    return {SUPER_ROLE, DEFAULT_ROLE, *known_roles} | {
        r["name"] for d in templates.of_kind("roles") for r in d.content["roles"]}


DEFAULT = "(default)"  # the process records follow when no business type names one


def _duplicate_flow(kind: str, name: str) -> Message:
    if kind == "stage_process":
        return Message("stage process '%(name)s' is defined in more than one file", name=name)
    return Message("approval flow '%(name)s' is defined in more than one file", name=name)


def _overlapping_processes(docs: list[Document]) -> Iterator[Problem]:
    """A record must follow one process: one default per object, one per business type."""
    claimed: dict[tuple[str, str], str] = {}
    for doc in docs:
        raw = doc.content
        keys = list(raw.get("business_types", [])) or (
            [] if raw.get("departments") else [DEFAULT])
        for key in keys:
            ident = (raw["object"], key)
            if ident in claimed and claimed[ident] != doc.name:
                path = "business_types" if key is not DEFAULT else "stage_process"
                yield Problem("stage_process.overlap", doc.source, path,
                              Message("records of %(object)s (default) already follow "
                                      "'%(process)s'",
                                      object=raw["object"], process=claimed[ident])
                              if key is DEFAULT else
                              Message("records of %(object)s type %(type)s already follow "
                                      "'%(process)s'", object=raw["object"], type=key,
                                      process=claimed[ident]))
            claimed.setdefault(ident, doc.name)


class _Checker:
    def __init__(self, doc: Document, objects: dict[str, ObjectDef], known: set[str],
                 settings: Mapping[str, tuple[str, Any]] | None = None):
        self.doc = doc
        self.settings = settings or {}
        self.raw = doc.content
        self.objects = objects
        self.known = known

    def problem(self, code: str, path: list, message: str) -> Problem:
        return Problem(code, self.doc.source, self.doc.where(path), message)

    def trigger(self) -> str | None:
        """The flow's trigger; None when the schema refused it (nothing is known)."""
        return None if "trigger" in self.doc.dropped else self.raw.get("trigger", "submit")

    def target(self) -> tuple[ObjectDef | None, Problem | None]:
        name = self.raw["object"]
        obj = self.objects.get(name)
        if obj is None and name not in self.known:
            return None, self.problem("flow.object", ["object"],
                                      Message("'%(name)s' is not a known object", name=name))
        return obj, None

    def field_problem(self, obj: ObjectDef, name: str, path: list) -> Problem | None:
        f = obj.all_fields.get(name)
        if f is None or f.archived or not f.stored:
            return self.problem("flow.field", path, Message("'%(name)s' is not a field of "
                                                            "%(object)s",
                                                            name=name, object=obj.name))
        return None

    # -- stage processes -----------------------------------------------------------------
    def stage_process(self, flows: dict[str, Document]) -> Iterator[Problem]:
        obj, missing = self.target()
        if missing:
            yield missing
        raw = self.raw
        stages = raw["stages"]
        names = Counter(s["name"] for s in stages)
        for i, s in enumerate(stages):
            if names[s["name"]] > 1:
                yield self.problem("stage.duplicate", ["stages", i, "name"],
                                   Message("stage '%(name)s' is listed twice", name=s['name']))
        types = Counter(s.get("type", "open") for s in stages)
        for kind in ("won", "lost"):
            if types[kind] > 1:
                yield self.problem("stage.terminal", ["stages"],
                                   Message("a process has at most one %(kind)s stage", kind=kind))
        if not types["open"] and not self.doc.removed.get(("stages",)):
            yield self.problem("stage.open", ["stages"], Message("a process needs an open stage"))
        kinds = {s["name"]: s.get("type", "open") for s in stages}
        for i, name in enumerate(raw.get("start_stages", [])):
            if name in self.doc.broken:
                continue  # a stage the schema refused: reported there
            if name not in kinds:
                yield self.problem("stage_process.start_stages", ["start_stages", i],
                                   Message("'%(name)s' is not a stage of this process",
                                           name=name))
            elif kinds[name] != "open":
                yield self.problem("stage_process.start_stages", ["start_stages", i],
                                   Message("a new record cannot start in %(kind)s stage "
                                           "'%(name)s'", kind=kinds[name], name=name))
        for i, s in enumerate(stages):
            yield from self._stage_items(i, s)
            if s.get("approval"):
                yield from self._stage_approval(i, s["approval"], flows)
            if s.get("reason_field") and s.get("type") != "lost":
                yield self.problem("stage.reason_field", ["stages", i, "reason_field"],
                                   Message("only a lost stage asks for a reason"))
            if s.get("type") == "lost" and not s.get("reason_field"):
                yield self.problem("stage.reason_field", ["stages", i],
                                   Message("a lost stage needs 'reason_field': the lost reason"))
        if obj is not None:
            yield from self._stage_fields(obj)

    def _stage_items(self, i: int, s: dict) -> Iterator[Problem]:
        for key in ("work", "key_events"):
            seen = Counter(item["name"] for item in s.get(key, []))
            for j, item in enumerate(s.get(key, [])):
                if seen[item["name"]] > 1:
                    yield self.problem("stage.duplicate", ["stages", i, key, j, "name"],
                                       Message("'%(name)s' is listed twice", name=item['name']))
        shares = sum(e.get("share", 0) for e in s.get("key_events", []))
        if s["win_rate"] + shares > 100:
            yield self.problem("stage.win_rate", ["stages", i, "key_events"],
                               Message("the win rate and the key events' shares add up to more "
                                       "than 100"))

    def _stage_approval(self, i: int, name: str, flows: dict[str, Document]) -> Iterator[Problem]:
        path = ["stages", i, "approval"]
        flow = flows.get(name)
        if flow is None:
            yield self.problem("stage.approval", path, Message("approval flow '%(name)s' does not "
                                                               "exist", name=name))
        elif flow.content["object"] != self.raw["object"]:
            yield self.problem("stage.approval", path,
                               Message("approval flow '%(name)s' is for %(object)s",
                                       name=name, object=flow.content['object']))
        elif flow.content.get("trigger", "submit") != "stage" and \
                "trigger" not in flow.dropped:
            yield self.problem("stage.approval", path,
                               Message("approval flow '%(name)s' needs 'trigger: stage'",
                                       name=name))

    def _stage_fields(self, obj: ObjectDef) -> Iterator[Problem]:
        raw = self.raw
        f = obj.all_fields.get(raw["field"])
        if f is None or f.archived or f.type != "select":
            yield self.problem("stage_process.field", ["field"],
                               Message("'%(field)s' is not a select field of %(object)s: a stage "
                                       "process needs the field that holds the stage",
                                       field=raw['field'], object=obj.name))
        else:
            options = {o.value for o in f.options}
            for i, s in enumerate(raw["stages"]):
                if s["name"] not in options:
                    yield self.problem("stage.option", ["stages", i, "name"],
                                       Message("'%(name)s' is not an option of "
                                               "%(object)s.%(field)s",
                                               name=s['name'], object=obj.name, field=f.name))
        if raw.get("win_rate_field"):
            rate = obj.all_fields.get(raw["win_rate_field"])
            if rate is None or rate.archived or rate.computed or \
                    rate.kind.storage not in NUMBER_STORAGE:
                yield self.problem("stage_process.win_rate_field", ["win_rate_field"],
                                   Message("'%(win_rate_field)s' is not a number field of "
                                           "%(object)s",
                                           win_rate_field=raw['win_rate_field'], object=obj.name))
        for i, name in enumerate(raw.get("business_types", [])):
            if obj.business_type(name) is None:
                yield self.problem("stage_process.business_type", ["business_types", i],
                                   Message("'%(name)s' is not a business type of %(object)s",
                                           name=name, object=obj.name))
        for i, s in enumerate(raw["stages"]):
            for j, name in enumerate(s.get("required", [])):
                found = self.field_problem(obj, name, ["stages", i, "required", j])
                if found:
                    yield found
            if s.get("reason_field"):
                found = self.field_problem(obj, s["reason_field"], ["stages", i, "reason_field"])
                if found:
                    yield found

    # -- approval flows ------------------------------------------------------------------
    def approval_flow(self, roles: set[str] | None, managed: set[tuple[str, str]]
                      ) -> Iterator[Problem]:
        obj, missing = self.target()
        if missing:
            yield missing
        raw = self.raw
        names = Counter(s["name"] for s in raw["steps"])
        for i, step in enumerate(raw["steps"]):
            path = ["steps", i]
            if names[step["name"]] > 1:
                yield self.problem("step.duplicate", [*path, "name"],
                                   Message("step '%(name)s' is listed twice", name=step['name']))
            role = step["approvers"].get("role")
            if role and roles is not None and role not in roles:
                yield self.problem("step.role", [*path, "approvers", "role"],
                                   Message("role '%(role)s' does not exist", role=role))
            approvers = step["approvers"]
            if approvers["type"] == "submitter_chooses" and \
                    self.trigger() not in ("submit", None):
                yield self.problem("step.approvers", [*path, "approvers", "type"],
                                   Message("only a flow the user submits lets the submitter "
                                           "choose approvers"))
            for key in ("users", "role", "level"):
                if key in approvers and key not in APPROVER_KEYS[approvers["type"]]:
                    yield self.problem("step.approvers", [*path, "approvers", key],
                                       Message("%(type)s approvers take no '%(key)s'",
                                               type=approvers['type'], key=key))
        if self.trigger() not in ("field_change", None) and raw.get("trigger_fields"):
            yield self.problem("flow.trigger_fields", ["trigger_fields"],
                               Message("only a field_change trigger has trigger fields"))
        if obj is not None:
            yield from self._flow_fields(obj, managed)

    def _flow_fields(self, obj: ObjectDef, managed: set[tuple[str, str]]) -> Iterator[Problem]:
        raw = self.raw
        if raw.get("condition"):
            try:
                ex.compile_expression(raw["condition"], Names(obj, self.objects),
                                      expect=ex.BOOLEAN, settings=self.settings)
            except ex.ExpressionError as exc:
                yield self.problem("flow.condition", ["condition"], exc.message)
        for i, name in enumerate(raw.get("trigger_fields", [])):
            found = self.field_problem(obj, name, ["trigger_fields", i])
            if found:
                yield found
        for outcome in FIELD_UPDATES:
            for name, value in (raw.get(outcome) or {}).items():
                path = [outcome, name]
                found = self.field_problem(obj, name, path)
                if found:
                    yield found
                    continue
                f = obj.all_fields[name]
                if not f.writable:
                    yield self.problem("flow.update", path,
                                       Message("'%(name)s' cannot be set", name=name))
                elif (obj.name, name) in managed:
                    yield self.problem("flow.update", path,
                                       Message("'%(name)s' changes only by moving the record "
                                               "along its stage path", name=name))
                elif value is not None:
                    try:
                        f.kind.coerce(value, f)
                    except InvalidValue as exc:
                        yield self.problem("flow.update", path, exc.message)
