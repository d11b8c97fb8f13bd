"""The fields the engine owns: no user path, and no automation, writes them.

Shared by the registry (which refuses such writes at run time) and ``metacrm validate``
(which refuses metadata that would try).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from metacrm.metadata.flows import ApprovalFlowDef, StageProcessDef
from metacrm.metadata.model import ObjectDef

__all__ = ["ENGINE_OWNERS", "owned_fields"]

ENGINE_OWNERS = ("computed", "stages", "approvals")


def owned_fields(objects: Mapping[str, ObjectDef], processes: Iterable[StageProcessDef],
                 flows: Iterable[ApprovalFlowDef]) -> dict[str, dict[str, str]]:
    """Per object, the fields the engine owns and which part of it writes each."""
    out: dict[str, dict[str, str]] = {
        name: {f.name: "computed" for f in obj.active_fields if f.kind.generated}
        for name, obj in objects.items()}
    for flow in flows:
        for name in flow.updated_fields:
            out.setdefault(flow.object, {})[name] = "approvals"
    for p in processes:  # the flow checks keep outcomes off the stage fields
        for managed in (p.field, p.win_rate_field):
            if managed:
                out.setdefault(p.object, {})[managed] = "stages"
    return {name: found for name, found in out.items() if found}
