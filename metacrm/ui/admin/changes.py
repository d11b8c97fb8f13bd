"""A metadata change from an admin form, with the preview of a risky one.

A change the data refuses (a required field over blanks, a type change over values…)
is shown with the records in its way. The admin answers each refusal that has an
answer (a value to fill blanks with, or converting the values), sees what that would
do, and only then confirms. The preview page posts the original form again, with the
answers and the step; nothing changes before the step is ``apply``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _

from metacrm.engine import customise
from metacrm.engine.errors import SchemaChangeRefused
from metacrm.engine.schema import schema_sync
from metacrm.ui.admin import customising
from metacrm.ui.context import actor

STEP = "_step"  # "" (first try), "preview" (answers given), "apply" (confirmed)
FILL = "fill:"  # fill:<object>.<field> = the value for blank records
CONVERT = "convert:"  # convert:<object>.<field> = 1
CONTROL = ("csrf_token", STEP)

Problems = list[dict[str, Any]]


def options_from_form() -> schema_sync.PlanOptions:
    conversions = {}
    for key, value in request.form.items():
        if key.startswith(FILL) and value.strip():
            conversions[key[len(FILL):]] = schema_sync.Conversion("fill", value.strip())
        elif key.startswith(CONVERT) and value:
            conversions[key[len(CONVERT):]] = schema_sync.Conversion("convert")
    return schema_sync.PlanOptions(conversions=conversions)


def original_form() -> list[tuple[str, str]]:
    """What the admin typed in the first form, carried through the preview steps."""
    return [(k, v) for k, v in request.form.items(multi=True)
            if k not in CONTROL and not k.startswith((FILL, CONVERT))]


def submit(summary: str, edit: customise.Edit, *, on_problems: Callable[[Problems], Any],
           title: str, back: str) -> Any | None:
    """Apply the change; ``None`` when it is done. Otherwise the response: the form again
    with the engine's problems, or the preview of a change the data refuses."""
    step = request.form.get(STEP, "")
    options = options_from_form()
    try:
        if step == "preview":
            outcome = customising.apply(actor().username, summary, edit, options=options,
                                        preview=True)
            if outcome.plan.refused:
                return _preview(outcome.plan.refused, title, back, options)
            return _preview([], title, back, options, plan=outcome.plan)
        customising.apply(actor().username, summary, edit, options=options)
    except SchemaChangeRefused as exc:
        return _preview(exc.changes, title, back, options)
    except customising.REFUSALS as exc:
        return on_problems(customising.problems(exc))
    return None


def _preview(refused: list, title: str, back: str, options: schema_sync.PlanOptions, *,
             plan: schema_sync.Plan | None = None):
    consequences = _consequences(plan) if plan is not None else []
    return render_template(
        "admin/change_preview.html", title=title, back=back, refused=refused,
        consequences=consequences, confirm=plan is not None,
        original=original_form(), answers=options.conversions, fill=FILL, convert=CONVERT,
        step=STEP, action=request.full_path.rstrip("?")), 409 if plan is None else 200


def _consequences(plan: schema_sync.Plan) -> list[dict[str, Any]]:
    """What a confirmed change does to the records, in the admin's language."""
    out = []
    for change in plan.changes:
        if isinstance(change, schema_sync.ConvertColumn):
            text = (_("%(count)d value(s) of %(field)s do not convert and will be cleared.",
                      count=change.lost, field=change.field.name) if change.lost else
                    _("Every value of %(field)s converts to the new type.",
                      field=change.field.name))
            out.append({"object": change.object, "text": text, "sample": change.sample})
        elif isinstance(change, schema_sync.FillBlanks):
            out.append({"object": change.object, "sample": [], "text": _(
                "%(count)d record(s) without a value get %(value)s in %(field)s.",
                count=change.count, value=change.value, field=change.field.name)})
        elif isinstance(change, schema_sync.AddColumn) and change.fill is not None:
            out.append({"object": change.object, "sample": [], "text": _(
                "Existing records get %(value)s in the new field %(field)s.",
                value=change.fill, field=change.field.name)})
    return out
