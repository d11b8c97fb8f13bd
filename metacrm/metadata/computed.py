"""The computed parts of an object, compiled once: formulas, roll-ups, defaults, validation
rules, lookup filters and dependent picklists.

``compile_object`` is used twice: by ``metacrm validate`` (every problem, with its path)
and by the engine's registry (the compiled expressions it evaluates per record).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from metacrm.metadata import expressions as ex
from metacrm.metadata.expressions import Expression, ExpressionError
from metacrm.metadata.messages import Message
from metacrm.metadata.model import FieldDef, ObjectDef, RollupDef, ValidationRuleDef

ROLLUP_FUNCTIONS = ("count", "sum", "min", "max")
RECORD = "record."  # in lookup filters, the record being edited
# Which value types each declared result type accepts.
RESULT_TYPES = {"text": (ex.TEXT,), "integer": (ex.NUMBER, ex.ID), "decimal": (ex.NUMBER,),
                "currency": (ex.NUMBER,), "percent": (ex.NUMBER,), "date": (ex.DATE,),
                "datetime": (ex.DATETIME, ex.DATE), "boolean": (ex.BOOLEAN,)}


def value_type(f: FieldDef) -> str:
    return ex.STORAGE_TYPES.get(f.kind.storage, ex.ANY)


class Names(Mapping):
    """The names an expression on an object may use, with their types: its own fields and
    one hop through each lookup (``customer.level``). A lookup to an object outside the
    set being checked lets any hop through, typed "any"."""

    def __init__(self, obj: ObjectDef, objects: Mapping[str, ObjectDef], prefix: str = "",
                 hops: bool = True):
        self.types: dict[str, str] = {}
        self.open: set[str] = set()
        for f in obj.queryable.values():
            self.types[prefix + f.name] = value_type(f)
            if not hops or f.kind.references != "target":
                continue
            target = objects.get(f.target or "")
            if target is None:
                self.open.add(prefix + f.name + ".")
                continue
            for g in target.queryable.values():
                self.types[f"{prefix}{f.name}.{g.name}"] = value_type(g)

    def __getitem__(self, name: str) -> str:
        if name in self.types:
            return self.types[name]
        if any(name.startswith(p) for p in self.open):
            return ex.ANY
        raise KeyError(name)

    def __iter__(self):
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)


_LOOKED_UP = re.compile(r"\s*([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\s*")


def _looked_up_select(f: FieldDef, obj: ObjectDef, objects: Mapping[str, ObjectDef]
                      ) -> FieldDef | None:
    """The select a text formula copies through a lookup (``customer.level``), if any."""
    if f.type != "formula" or f.returns != "text" or f.options or not f.expression:
        return None
    match = _LOOKED_UP.fullmatch(f.expression)
    lookup = obj.all_fields.get(match.group(1)) if match else None
    target = objects.get(lookup.target or "") if lookup is not None else None
    found = target.all_fields.get(match.group(2)) if target is not None and match else None
    return found if found is not None and found.type == "select" else None


def with_looked_up_options(objects: Mapping[str, ObjectDef]) -> dict[str, ObjectDef]:
    """Objects whose text formulas that copy a select through a lookup carry its options,
    so the copy shows (and filters by) the option labels, not the codes."""
    out = {}
    for name, obj in objects.items():
        fields = tuple(replace(f, options=g.options) if (g := _looked_up_select(
            f, obj, objects)) is not None else f for f in obj.fields)
        out[name] = replace(obj, fields=fields) if fields != obj.fields else obj
    return out


@dataclass(frozen=True)
class Rollup:
    field: FieldDef
    child: str
    via: str
    function: str
    summed: str | None
    filter: Expression | None

    @property
    def reads(self) -> frozenset[str]:
        """The child's fields a change of which can change the summary."""
        found = {self.via} | (set(self.filter.names) if self.filter else set())
        return frozenset(found | ({self.summed} if self.summed is not None else set()))


@dataclass(frozen=True)
class ObjectLogic:
    """What the records service evaluates for one object, in the order it must."""

    formulas: tuple[tuple[FieldDef, Expression], ...] = ()
    defaults: tuple[tuple[FieldDef, Expression], ...] = ()
    rules: tuple[tuple[ValidationRuleDef, Expression], ...] = ()
    lookup_filters: dict[str, Expression] = field(default_factory=dict)
    rollups: tuple[Rollup, ...] = ()

    @property
    def hops(self) -> dict[str, frozenset[str]]:
        """Lookup field → the target fields that formulas, defaults and rules read."""
        out: dict[str, set[str]] = {}
        for _, e in (*self.formulas, *self.defaults, *self.rules):
            for name in e.names:
                if "." in name:
                    lookup, target_field = name.split(".", 1)
                    out.setdefault(lookup, set()).add(target_field)
        return {k: frozenset(v) for k, v in out.items()}


@dataclass
class Compiled:
    logic: ObjectLogic
    problems: list[tuple[str, list, str]]  # (code, path, message)


def compile_object(obj: ObjectDef, objects: Mapping[str, ObjectDef],
                   settings: Mapping[str, tuple[str, Any]] | None = None) -> Compiled:
    """Compile every expression of ``obj``; problems name their path in the definition.
    ``settings``: what ``setting("name")`` reads (``settings.expression_settings``)."""
    builder = _Builder(obj, objects, settings or {})
    logic = builder.build()
    return Compiled(logic, builder.problems)


class _Builder:
    def __init__(self, obj: ObjectDef, objects: Mapping[str, ObjectDef],
                 settings: Mapping[str, tuple[str, Any]]):
        self.obj = obj
        self.settings = settings
        self.objects = objects
        self.names = Names(obj, objects)
        self.problems: list[tuple[str, list, str]] = []
        self.index = {f.name: i for i, f in enumerate(obj.fields)}

    def problem(self, code: str, path: list, message: str) -> None:
        self.problems.append((code, path, message))

    def compile(self, source: str, path: list, code: str, names: Mapping[str, str], *,
                expect: str | None = None) -> Expression | None:
        try:
            return ex.compile_expression(source, names, expect=expect, settings=self.settings)
        except ExpressionError as exc:
            self.problem(code, path, exc.message)
            return None

    def build(self) -> ObjectLogic:
        formulas, defaults, filters, rollups = {}, [], {}, []
        for f in self.obj.active_fields:
            path = ["fields", self.index[f.name]]
            if f.type == "formula" and f.expression:
                found = self.compile(f.expression, [*path, "expression"], "formula.expression",
                                     self.names)
                if found is not None and self._fits(found, f, [*path, "expression"]):
                    formulas[f.name] = found
            if f.default_expression:
                found = self._default(f, f.default_expression, path)
                if found is not None:
                    defaults.append((f, found))
            if f.filter:
                found = self._lookup_filter(f, f.filter, path)
                if found is not None:
                    filters[f.name] = found
            if f.rollup:
                rollup = self._rollup(f, f.rollup, path)
                if rollup is not None:
                    rollups.append(rollup)
            if f.type == "lines":
                self._lines(f, path)
            if f.depends_on:
                self._dependent(f, path)
        return ObjectLogic(formulas=self._ordered(formulas), defaults=tuple(defaults),
                           rules=tuple(self._rules()), lookup_filters=filters,
                           rollups=tuple(rollups))

    def _fits(self, e: Expression, f: FieldDef, path: list) -> bool:
        if e.type == ex.ANY or e.type in RESULT_TYPES[f.returns or "decimal"]:
            return True
        self.problem("formula.returns", path,
                     Message("the formula gives a %(type)s, but the field returns %(returns)s",
                             type=e.type, returns=f.returns))
        return False

    def _default(self, f: FieldDef, source: str, path: list) -> Expression | None:
        if f.default is not None:
            self.problem("field.default", [*path, "default_expression"],
                         Message("give either default or default_expression, not both"))
            return None
        if f.kind.generated or f.type == "lines":
            self.problem("field.default", [*path, "default_expression"],
                         Message("a %(type)s field cannot have a default", type=f.type))
            return None
        expect = value_type(f)
        found = self.compile(source, [*path, "default_expression"],
                             "default.expression", self.names,
                             expect=None if expect == ex.LIST else expect)
        return found

    def _lookup_filter(self, f: FieldDef, source: str, path: list) -> Expression | None:
        target = self.objects.get(f.target or "")
        if f.kind.references != "target" or target is None:
            if f.kind.references != "target":
                self.problem("lookup.filter", [*path, "filter"],
                             Message("a %(type)s field cannot have a lookup filter", type=f.type))
            return None
        names = {**Names(target, self.objects, hops=False).types,
                 **Names(self.obj, self.objects, prefix=RECORD, hops=False).types}
        found = self.compile(source, [*path, "filter"], "lookup.filter", names,
                             expect=ex.BOOLEAN)
        if found is not None:
            constants = frozenset(n for n in names if n.startswith(RECORD))
            try:
                ex.check_sql(found, constants)
            except ExpressionError as exc:
                self.problem("lookup.filter", [*path, "filter"], exc.message)
                return None
        return found

    def _rollup(self, f: FieldDef, spec: RollupDef, path: list) -> Rollup | None:
        child = self.objects.get(spec.object)
        where = [*path, "rollup"]
        if child is None:
            self.problem("rollup.object", [*where, "object"],
                         Message("'%(name)s' is not a known object", name=spec.object))
            return None
        via = child.all_fields.get(spec.via)
        if via is None or via.kind.references != "target" or via.target != self.obj.name:
            self.problem("rollup.relation", [*where, "via"],
                         Message("'%(other)s.%(via)s' is not a lookup to %(object)s: %(other)s is "
                                 "not "
                                 "related to %(object)s through it", other=spec.object,
                                 via=spec.via, object=self.obj.name))
            return None
        summed = child.queryable.get(spec.field or "")
        if spec.function == "count":
            if spec.field:
                self.problem("rollup.field", [*where, "field"], Message("count needs no field"))
        elif summed is None:
            self.problem("rollup.field", [*where, "field"],
                         f"'{spec.field}' is not a field of {spec.object}" if spec.field
                         else f"{spec.function} needs the field to summarise")
            return None
        else:
            kind = value_type(summed)
            allowed = (ex.NUMBER,) if spec.function == "sum" else (ex.NUMBER, ex.DATE,
                                                                    ex.DATETIME)
            if kind not in allowed:
                self.problem("rollup.field", [*where, "field"],
                             Message("cannot take the %(function)s of a %(type)s field",
                                     function=spec.function, type=summed.type))
                return None
            if kind not in RESULT_TYPES[f.returns or "decimal"]:
                self.problem("rollup.returns", [*path, "returns"],
                             Message("the %(function)s of %(object)s.%(field)s is a %(kind)s, but "
                                     "the field returns %(returns)s",
                                     function=spec.function, object=spec.object, field=spec.field,
                                     kind=kind, returns=f.returns))
                return None
        condition = None
        if spec.filter:
            condition = self.compile(spec.filter, [*where, "filter"], "rollup.filter",
                                     Names(child, self.objects, hops=False), expect=ex.BOOLEAN)
            if condition is None:
                return None
            try:
                ex.check_sql(condition)
            except ExpressionError as exc:
                self.problem("rollup.filter", [*where, "filter"], exc.message)
                return None
        return Rollup(field=f, child=child.name, via=via.name, function=spec.function,
                      summed=summed.name if summed else None, filter=condition)

    def _lines(self, f: FieldDef, path: list) -> None:
        child = self.objects.get(f.target or "")
        if child is None:
            return  # the target check reports it
        master = child.master_field
        if master is None or master.target != self.obj.name or (f.via and f.via != master.name):
            self.problem("lines.relation", [*path, "target"],
                         Message("%(child)s needs a lookup to %(object)s with master: true to be "
                                 "its lines",
                                 child=child.name, object=self.obj.name))

    def _dependent(self, f: FieldDef, path: list) -> None:
        controller = self.obj.all_fields.get(f.depends_on or "")
        if not f.kind.options:
            self.problem("field.depends_on", [*path, "depends_on"],
                         Message("a %(type)s field cannot depend on another", type=f.type))
        elif controller is None or not controller.kind.options or controller.name == f.name:
            self.problem("field.depends_on", [*path, "depends_on"],
                         Message("'%(depends_on)s' is not another select field of %(object)s",
                                 depends_on=f.depends_on, object=self.obj.name))
        else:
            allowed = {o.value for o in controller.options}
            for i, option in enumerate(f.options):
                for value in option.parents:
                    if value not in allowed:
                        self.problem("field.depends_on", [*path, "options", i, "parents"],
                                     Message("'%(value)s' is not an option of %(field)s",
                                             value=value, field=controller.name))

    def _rules(self) -> Iterator[tuple[ValidationRuleDef, Expression]]:
        for i, rule in enumerate(self.obj.validation_rules):
            path = ["validation_rules", i]
            for j, name in enumerate(rule.fields):
                if name not in self.obj.queryable and name not in {
                        f.name for f in self.obj.line_fields}:
                    self.problem("rule.field", [*path, "fields", j],
                                 Message("'%(name)s' is not a field of %(object)s",
                                         name=name, object=self.obj.name))
            found = self.compile(rule.condition, [*path, "condition"], "rule.condition",
                                 self.names, expect=ex.BOOLEAN)
            if found is not None and rule.active:
                yield rule, found

    def _ordered(self, formulas: dict[str, Expression]) -> tuple[tuple[FieldDef, Expression], ...]:
        """Formulas in an order where each comes after the formulas it reads; a cycle is
        a problem at the first formula on it."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, trail: list[str]) -> bool:
            if state.get(name) == "done":
                return True
            if state.get(name) == "visiting":
                cycle = trail[trail.index(name):] + [name]
                first = cycle[0]
                self.problem("formula.cycle", ["fields", self.index[first], "expression"],
                             "formulas refer to each other in a cycle: " + " → ".join(cycle))
                return False
            state[name] = "visiting"
            ok = all(visit(dep, [*trail, name]) for dep in sorted(formulas[name].names)
                     if dep in formulas)
            state[name] = "done"
            order.append(name)
            return ok

        acyclic = all([visit(name, []) for name in formulas])
        if not acyclic:
            return ()
        fields = self.obj.all_fields
        return tuple((fields[name], formulas[name]) for name in order)
