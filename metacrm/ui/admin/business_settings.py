"""Business settings (业务参数) under /admin/settings: the values a template declares
(reminder days, thresholds…), edited by an admin as one metadata version. Every process
reads the new values at once: expressions bind them when the registry is rebuilt."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from metacrm.metadata import edits
from metacrm.metadata.labels import Label
from metacrm.metadata.settings import SettingDef
from metacrm.ui.admin import customising
from metacrm.ui.context import actor
from metacrm.ui.runtime import registry

bp = Blueprint("settings", __name__, url_prefix="/settings")
OTHER = Label(en="Other", zh="其他")


def grouped(settings: list[SettingDef]) -> list[tuple[Label, list[SettingDef]]]:
    """The settings under their headings, in the order the template declares them."""
    order = {id(s): i for i, s in enumerate(settings)}
    first: dict[Label, int] = {}
    for s in settings:
        first.setdefault(s.group or OTHER, order[id(s)])
    ranked = sorted(settings, key=lambda s: (first[s.group or OTHER], order[id(s)]))
    return [(group, list(items)) for group, items in groupby(ranked, lambda s: s.group or OTHER)]


def typed_values(settings: list[SettingDef]) -> dict[str, Any]:
    """What the form sent, per setting: a checkbox is absent when off; ``reset`` names a
    setting going back to its default."""
    reset = request.form.get("reset")
    out: dict[str, Any] = {}
    for s in settings:
        if s.name == reset:
            out[s.name] = None
        elif s.type == "boolean":
            out[s.name] = request.form.get(s.name) == "1"
        elif s.name in request.form:
            out[s.name] = request.form[s.name]
    return out


def render(problems: list | None = None, typed: dict | None = None, status: int = 200):
    settings = list(registry().settings.values())
    return render_template("admin/settings.html", groups=grouped(settings),
                           problems=problems or [], typed=typed or {}), status


@bp.get("")
def index():
    return render()


@bp.post("")
def save():
    settings = list(registry().settings.values())
    values = typed_values(settings)
    changed: list[str] = []

    def edit(draft: edits.Draft) -> None:
        changed.extend(edits.set_settings(draft, values))

    names = ", ".join(values)
    try:
        customising.apply(actor().username, f"business settings: {names}", edit)
    except customising.REFUSALS as exc:
        return render(customising.problems(exc), request.form.to_dict(), 422)
    flash(_("Business settings saved.") if changed else _("Nothing changed."), "success")
    return redirect(url_for(".index"))
