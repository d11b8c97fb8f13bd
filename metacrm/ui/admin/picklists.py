"""Shared picklists under /admin/picklists: create one, and per picklist add a value,
relabel one (its stored value never changes), move it up or down, deactivate or
reactivate it. A deactivated value stays on the records that hold it but is not offered
anew (the records service sees to that). Every change goes through the customisations
engine; its refusals are shown by the form they concern, with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.metadata import edits
from metacrm.metadata.edits import Draft
from metacrm.metadata.messages import Message
from metacrm.metadata.model import PicklistDef
from metacrm.ui.admin import customising
from metacrm.ui.context import actor
from metacrm.ui.runtime import registry

bp = Blueprint("picklists", __name__, url_prefix="/picklists")


def picklist_or_404(name: str) -> PicklistDef:
    found = registry().picklists.get(name)
    if found is None:
        abort(404)
    return found


def typed_label(prefix: str = "label") -> dict[str, str] | None:
    en = request.form.get(f"{prefix}_en", "").strip()
    zh = request.form.get(f"{prefix}_zh", "").strip()
    return {"en": en, "zh": zh} if en or zh else None


def users_of(name: str) -> list[tuple[Any, Any]]:
    """(object, field) pairs whose select fields take their options from the picklist."""
    return [(o, f) for o in registry().active_objects for f in o.active_fields
            if f.picklist == name]


def change(summary: str, edit) -> list[dict[str, Any]]:
    """Apply a change; the engine's problems, or [] when it is done."""
    try:
        customising.apply(actor().username, summary, edit)
    except customising.REFUSALS as exc:
        return customising.problems(exc)
    return []


# -- the list ---------------------------------------------------------------------------------
def render_index(problems: list | None = None, typed: dict | None = None, status: int = 200):
    return render_template("admin/picklists.html", picklists=registry().picklists.values(),
                           users_of=users_of, problems=problems or [], typed=typed or {}), status


@bp.get("")
def index():
    return render_index()


@bp.post("")
def create():
    typed = request.form.to_dict()
    name = typed.get("name", "").strip()
    first = {"value": typed.get("value", "").strip(), "label": typed_label("option")}
    raw = {"name": name, "label": typed_label(), "options": [first]}
    problems = change(f"add picklist {name}", lambda draft: edits.create_picklist(draft, raw))
    if problems:
        return render_index(problems, typed, 422)
    flash(_("Picklist created."), "success")
    return redirect(url_for(".detail", name=name))


# -- one picklist --------------------------------------------------------------------------------
def render_detail(picklist: PicklistDef, problems: list | None = None, form: str = "",
                  typed: dict | None = None, status: int = 200):
    return render_template("admin/picklist.html", picklist=picklist,
                           used_by=users_of(picklist.name), problems=problems or [],
                           form=form, typed=typed or {}), status


@bp.get("/<name>")
def detail(name: str):
    return render_detail(picklist_or_404(name))


def on_options(name: str, summary: str, edit, *, form: str, done: str):
    """Apply an edit of the picklist's options; the page again with the problems, or back."""
    picklist = picklist_or_404(name)

    def apply(draft: Draft) -> None:
        edit(edits.options_of(draft, picklist=name))

    problems = change(f"{summary} in picklist {name}", apply)
    if problems:
        return render_detail(picklist, problems, form, request.form.to_dict(), 422)
    flash(done, "success")
    return redirect(url_for(".detail", name=name))


@bp.post("/<name>/options")
def add_option(name: str):
    value = request.form.get("value", "").strip()
    raw = {"value": value, "label": typed_label()}
    return on_options(name, f"add option {value}", lambda options: edits.add_option(options, raw),
                      form="add", done=_("Value added."))


@bp.post("/<name>/options/<value>/label")
def relabel(name: str, value: str):
    label = typed_label()
    return on_options(name, f"relabel option {value}",
                      lambda options: edits.update_option(options, value, {"label": label}),
                      form=f"label:{value}", done=_("Saved."))


@bp.post("/<name>/options/<value>/move")
def move(name: str, value: str):
    step = -1 if request.form.get("direction") == "up" else 1

    def reorder(options: list[dict]) -> None:
        values = [o["value"] for o in options]
        if value not in values:
            raise edits.EditRefused("value", Message("there is no option '%(value)s'", value=value))
        i = values.index(value)
        j = min(max(i + step, 0), len(values) - 1)
        values[i], values[j] = values[j], values[i]
        edits.order_options(options, values)

    return on_options(name, f"move option {value}", reorder, form=f"move:{value}",
                      done=_("Order saved."))


@bp.post("/<name>/options/<value>/active")
def set_active(name: str, value: str):
    active = request.form.get("active") == "1"
    return on_options(name, f"{'reactivate' if active else 'deactivate'} option {value}",
                      lambda options: edits.update_option(options, value, {"active": active}),
                      form=f"active:{value}",
                      done=_("Value reactivated.") if active else _("Value deactivated."))
