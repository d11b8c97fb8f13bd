"""Automations that would trigger each other without end, found before they run.

The graph: an automation points at every automation its writes can trigger. A set
action writes its fields (and the formulas of that object that read them, which change
with them) on its object; that write triggers the object's ``updated`` automations and
those ``field_changed`` on one of the fields. Automations create no records, write no
stage field (the stage engine owns it) and end no approval, so the other triggers are
never reached from an automation. A cycle in the graph is a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from metacrm.metadata.automations import AutomationDef, SetDef
from metacrm.metadata.model import ObjectDef

__all__ = ["find_loops"]

Formulas = Callable[[ObjectDef], Mapping[str, frozenset[str]]]


def find_loops(objects: Mapping[str, ObjectDef], formulas: Formulas
               ) -> Iterator[tuple[str, list[str]]]:
    """Each loop once: (the automation it is reported at, the cycle as ``object.name``s
    ending where it began)."""
    graph = _graph(objects, formulas)
    state: dict[str, str] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> Iterator[tuple[str, list[str]]]:
        state[node] = "visiting"
        for nxt in graph[node]:
            if state.get(nxt) == "visiting":
                cycle = [*trail[trail.index(nxt):], nxt]  # "visiting": on the trail
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    yield cycle[0], cycle
            elif nxt not in state:
                yield from visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            yield from visit(node, [node])


def _graph(objects: Mapping[str, ObjectDef], formulas: Formulas) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for obj in objects.values():
        for automation in _active(obj):
            edges: list[str] = []
            for target, written in _writes(obj, automation, objects, formulas):
                edges.extend(f"{target.name}.{b.name}" for b in _active(target)
                             if _triggered(b, written))
            graph[f"{obj.name}.{automation.name}"] = sorted(set(edges))
    return graph


def _active(obj: ObjectDef) -> list[AutomationDef]:
    return [a for a in obj.automations if a.active]


def _triggered(automation: AutomationDef, written: frozenset[str]) -> bool:
    trigger = automation.trigger
    return trigger.event == "updated" or (
        trigger.event == "field_changed" and not written.isdisjoint(trigger.fields))


def _writes(obj: ObjectDef, automation: AutomationDef, objects: Mapping[str, ObjectDef],
            formulas: Formulas) -> Iterator[tuple[ObjectDef, frozenset[str]]]:
    """Per set action, the object written and every field the write may change."""
    for action in automation.actions:
        if not isinstance(action, SetDef):
            continue
        target: ObjectDef | None = obj
        if action.lookup is not None:
            f = obj.all_fields.get(action.lookup)
            target = objects.get(f.target or "") if f is not None else None
        if target is None:
            continue
        changed = set(action.fields)
        reads = formulas(target)
        grown = True
        while grown:  # formulas reading formulas: follow them to the end
            more = {name for name, used in reads.items() if name not in changed
                    and not changed.isdisjoint(used)}
            changed |= more
            grown = bool(more)
        yield target, frozenset(changed)
