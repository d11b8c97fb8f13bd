"""Admin pages of the stage processes and approval flows, each with its diagram (SVG).

Read-only: the definitions live in ``flows/`` metadata; these pages show what the
current registry holds. The diagrams are drawn by ``diagrams`` from the definitions.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from flask_babel import gettext

from metacrm.engine.access import roles
from metacrm.metadata.flows import ApprovalFlowDef, StageProcessDef
from metacrm.metadata.labels import Label
from metacrm.metadata.model import ObjectDef
from metacrm.ui.admin import diagrams
from metacrm.ui.i18n import language
from metacrm.ui.runtime import db, registry

bp = Blueprint("flows", __name__, url_prefix="/flows")


def _object(name: str) -> ObjectDef | None:
    return registry().objects.get(name)


def _role_labels() -> dict[str, Label]:
    return {r.name: Label.of(r.label, r.name) for r in roles.all_roles(db())}


def _business_types(process: StageProcessDef, obj: ObjectDef | None) -> list[Any]:
    """The business types' labels (their names when the object lost one)."""
    found = {b.name: b.label for b in obj.business_types} if obj else {}
    return [found.get(name, name) for name in process.business_types]


def _gating(flow: ApprovalFlowDef) -> list[tuple[StageProcessDef, Any]]:
    """The (process, stage) pairs whose moving on runs the flow."""
    return [(p, s) for p in registry().processes_of(flow.object) for s in p.stages
            if s.approval == flow.name]


@bp.get("/")
def index():
    reg = registry()
    processes = [{"def": p, "object": _object(p.object),
                  "business_types": _business_types(p, _object(p.object))}
                 for p in sorted(reg.stage_processes.values(), key=lambda p: (p.object, p.name))]
    flows = [{"def": f, "object": _object(f.object),
              "trigger": diagrams.trigger_text(f, _object(f.object), language(), gettext)}
             for f in sorted(reg.approval_flows.values(), key=lambda f: (f.object, f.name))]
    return render_template("admin/flows.html", processes=processes, flows=flows)


@bp.get("/process/<name>")
def process(name: str):
    reg = registry()
    found = reg.stage_processes.get(name)
    if found is None:
        abort(404)
    obj = _object(found.object)
    svg = diagrams.stage_process_svg(
        found, obj, lang=language(), gettext=gettext,
        flow_labels={n: f.label for n, f in reg.approval_flows.items()})
    return render_template("admin/flow_process.html", process=found, obj=obj, svg=svg,
                           business_types=_business_types(found, obj),
                           stage_title=lambda s: diagrams.stage_title(found, obj, s,
                                                                      language()),
                           flows=reg.approval_flows)


@bp.get("/approval/<name>")
def approval(name: str):
    found = registry().approval_flows.get(name)
    if found is None:
        abort(404)
    obj = _object(found.object)
    role_labels = _role_labels()
    gating = _gating(found)
    lang = language()
    svg = diagrams.approval_flow_svg(
        found, obj, lang=lang, gettext=gettext, role_labels=role_labels,
        gated_stages=[f"{diagrams.stage_title(p, obj, s, lang)} ({p.label.get(lang)})"
                      for p, s in gating])
    steps = [{"def": s, "approvers": diagrams.approver_text(s, lang, gettext, role_labels),
              "mode": diagrams.mode_text(s, gettext), "if_empty": diagrams.empty_text(s, gettext)}
             for s in found.steps]
    return render_template("admin/flow_approval.html", flow=found, obj=obj, svg=svg,
                           steps=steps, gating=gating,
                           trigger=diagrams.trigger_text(found, obj, lang, gettext),
                           on_submit=diagrams.updates_text(found.on_submit, obj, lang),
                           on_withdraw=diagrams.updates_text(found.on_withdraw, obj, lang),
                           on_approve=diagrams.updates_text(found.on_approve, obj, lang),
                           on_reject=diagrams.updates_text(found.on_reject, obj, lang))
