"""The registry: every active definition of one metadata version, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import MetaData, Table

from metacrm.engine.errors import ObjectNotFound
from metacrm.engine.tables import build_tables
from metacrm.metadata.computed import ObjectLogic, Rollup, compile_object
from metacrm.metadata.model import (
    NavGroup,
    ObjectDef,
    PicklistDef,
    build_manifest,
    build_object,
    build_picklist,
)


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
    metadata, tables = build_tables(objects)
    logic = {name: compile_object(obj, objects).logic for name, obj in objects.items()
             if not obj.archived}
    rollups_over: dict[str, list] = {}
    readers: dict[str, list] = {}
    for name, found in logic.items():
        for rollup in found.rollups:
            rollups_over.setdefault(rollup.child, []).append((name, rollup))
        formula_hops = ObjectLogic(formulas=found.formulas).hops
        for lookup, read in formula_hops.items():
            target = objects[name].all_fields[lookup].target
            readers.setdefault(target, []).append((name, lookup, read))
    return Registry(version, dict(sorted(objects.items())), picklists, tuple(groups),
                    metadata, tables, logic,
                    {k: tuple(v) for k, v in rollups_over.items()},
                    {k: tuple(v) for k, v in readers.items()})
