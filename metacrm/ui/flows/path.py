"""Stage paths on record pages, the kanban board per stage process, key-event documents.

Thin handlers: parse, call ``engine.stages``, render or redirect. A move asked for as
JSON (the kanban board's drag) is answered in JSON, every other one by a redirect to the
record with a flashed outcome.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required

from metacrm import clock
from metacrm.engine.access import permissions, users
from metacrm.engine.errors import (
    BadQuery,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    StageRefused,
    StaleVersion,
    ValidationFailed,
)
from metacrm.engine.flows import stage_moves, stages
from metacrm.engine.reading import query, saved_views
from metacrm.metadata.flows import StageDef, StageProcessDef
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui import context
from metacrm.ui.context import actor
from metacrm.ui.errors import error_response
from metacrm.ui.i18n import label, language, translate
from metacrm.ui.input import whole_number
from metacrm.ui.records import cells, widgets
from metacrm.ui.records.listing import list_state
from metacrm.ui.runtime import db, registry

bp = Blueprint("workflow", __name__)
KANBAN_CARDS = 50  # per column; the column's count and sum still cover every record
# Content types a browser could run are served as plain bytes.
ACTIVE_CONTENT = re.compile(r"html|javascript|ecmascript|xml|svg", re.IGNORECASE)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""


@bp.app_context_processor
def _kanban_link() -> dict[str, Any]:
    """Lists offer a kanban board when their object has stage processes."""
    return {"has_kanban": lambda obj: bool(registry().processes_of(obj.name))}


# -- the path bar -------------------------------------------------------------------------
def stage_names(process: StageProcessDef, obj: ObjectDef) -> dict[str, str]:
    return {s.name: label(stages.stage_label(process, obj, s)) for s in process.stages}


# What each kind of missing requirement asks of the user, with labels in their language
# (the engine's own message names fields and stages in English).
REQUIREMENT_TEXT: dict[str, Callable[[str, str], str]] = {
    "field": lambda item, stage: _("Fill in %(field)s (needed to enter %(stage)s)",
                                   field=item, stage=stage),
    "work": lambda item, stage: _("Tick the stage work: %(item)s", item=item),
    "event": lambda item, stage: _("Complete the key event: %(item)s", item=item),
    "approval": lambda item, stage: _("Pass the approval: %(flow)s", flow=item),
    "reason": lambda item, stage: _("Give the lost reason (%(field)s)", field=item),
    "stage": lambda item, stage: _("Move through %(stage)s first: it has its own work, key "
                                   "events or approval", stage=stage),
}


def requirement_text(obj: ObjectDef, need: stages.Requirement, names: dict[str, str]) -> str:
    text = REQUIREMENT_TEXT.get(need.kind)
    if text is None:
        return translate(need.message)
    return text(label(need.label), names.get(need.stage, need.stage))


def missing_view(obj: ObjectDef, missing: list[stages.Requirement],
                 names: dict[str, str]) -> list[dict[str, Any]]:
    return [{"kind": m.kind, "name": m.name, "stage": m.stage, "label": label(m.label),
             "message": requirement_text(obj, m, names)} for m in missing]


def reached(process: StageProcessDef, current: StageDef | None,
            history: list[dict[str, Any]]) -> int:
    """How far along the open stages the record got: a lost record, as far as the stage
    it was lost from."""
    if current is None:
        return -1
    if current.type == "won":
        return len(process.stages)
    if current.type == "lost":
        last = history[-1] if history else {}
        return process.position.get(last.get("from_stage") or "", -1)
    return process.position[current.name]


def path_panel(obj: ObjectDef, row: dict[str, Any]) -> dict[str, Any] | None:
    """The detail page's path bar: None for a record that follows no stage process."""
    session = db()
    found = stages.state(session, registry(), obj, row)
    if found is None:
        return None
    process, current = found.process, found.current
    names = stage_names(process, obj)
    done = stages.checks(session, obj, row["id"], current.name) if current else {}
    history = stages.history(session, obj, row["id"])
    people = {c["done_by"] for c in done.values()}
    people |= {h[k] for h in history for k in ("entered_by", "left_by")}
    if found.approval:
        people.add(found.approval["submitter_id"])
    lost = process.terminal_of("lost")
    reason = obj.all_fields.get(lost.reason_field) if lost and lost.reason_field else None
    flow = registry().approval_flows.get(found.approval["flow"]) if found.approval else None
    return {
        "state": found, "process": process, "current": current, "names": names,
        "reached": reached(process, current, history), "checks": done,
        "history": history, "people": users.display_names(session, {p for p in people if p}),
        "may_edit": context.record_may(obj, row["id"], ("edit",))["edit"],
        "locked": found.approval is not None, "flow": flow,
        "won": process.terminal_of("won"), "lost": lost, "reason_field": reason,
        "reasons": [o for o in reason.options if o.active] if reason else [],
        "missing": missing_view(obj, found.missing, names),
        "work_done": sum(1 for w in (current.work if current else ())
                         if ("work", w.name) in found.done),
        "needs_approval": any(m.kind == "approval" for m in found.missing),
        "targets": [s for s in process.open_stages if s is not current],
        "days": (clock.now() - found.entered_at).days if found.entered_at else None,
        "stamp": lambda value: widgets.display(obj.queryable["created_at"], value, language()),
    }


# -- moving, ticking, key events ----------------------------------------------------------
def wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == \
        "application/json"


def posted_values(obj: ObjectDef) -> dict[str, Any]:
    """Fields given with a move: the lost reason and the stages' required fields, those the
    user may see and write."""
    names = {n for p in registry().processes_of(obj.name) for s in p.stages
             for n in (*s.required, *([s.reason_field] if s.reason_field else []))}
    shown = context.visible(obj)
    fields = [shown[n] for n in sorted(names) if n in shown and n in request.form]
    return widgets.parse_form(request.form, fields, context.edit_locked(obj))


def version_of() -> int | None:
    return whole_number(request.form.get("version", ""))


def attempt(obj: ObjectDef, record_id: int, call: Callable[[], Any],
            names: dict[str, str] | None = None, wording: dict[str, str] | None = None
            ) -> tuple[Any, Any]:
    """Run an engine operation: (result, None) committed, or (None, the refusal's
    response) rolled back. Pages get a flash and a redirect, JSON callers an error.
    ``wording``: the user's words for an invalid field's message."""
    back = redirect(url_for("pages.detail", object_name=obj.name, record_id=record_id))
    try:
        result = call()
    except StageRefused as exc:
        db().rollback()
        missing = missing_view(obj, exc.missing, names or {})
        text = _("The record cannot move yet: %(items)s",
                 items="; ".join(m["message"] for m in missing))
        if wants_json():
            return None, error_response(422, exc.code, text,
                                        {m["name"]: m["message"] for m in missing},
                                        missing=missing)
        flash(text, "danger")
        return None, back
    except (ValidationFailed, StaleVersion, RecordLocked) as exc:
        db().rollback()
        if isinstance(exc, ValidationFailed):
            fields = {k: (wording or {}).get(k) or translate(v) for k, v in exc.fields.items()}
            status, text = 422, "; ".join(fields.values()) or translate(str(exc))
        elif isinstance(exc, StaleVersion):
            fields, status = {}, 409
            text = _("Someone else changed this record meanwhile. Reload it and try again.")
        else:
            fields, status = {}, 409
            text = translate(exc.args[0]) if exc.args else exc.code
        if wants_json():
            return None, error_response(status, exc.code, text, fields)
        flash(text, "danger")
        return None, back
    except (PermissionDenied, RecordNotFound) as exc:
        db().rollback()
        if not wants_json():
            raise
        if isinstance(exc, RecordNotFound):
            return None, error_response(404, "not_found", _("Not found."))
        return None, error_response(403, exc.code, translate(exc.args[0]) if exc.args
                                    else _("You may not do this."))
    db().commit()
    return result, None


@bp.post("/o/<object_name>/<int:record_id>/stage")
def move(object_name: str, record_id: int):
    obj = context.object_or_404(object_name)
    to = request.form.get("to", "")[:63]
    values = posted_values(obj)
    processes = registry().processes_of(obj.name)
    names = {k: v for p in processes for k, v in stage_names(p, obj).items()}
    result, refused = attempt(obj, record_id, lambda: stage_moves.move(
        db(), registry(), obj, record_id, to, actor=actor(), values=values,
        version=version_of()), names)
    if refused is not None:
        return refused
    if wants_json():
        record = result.record or {}
        return jsonify({"ok": True, "moved": result.moved, "approval_id": result.approval_id,
                        "stage": to if result.moved else None,
                        "version": record.get("version")})
    stage = names.get(to, to)
    if result.moved:
        flash(_("Moved to %(stage)s.", stage=stage), "success")
    else:
        flash(_("The move to %(stage)s waits for approval no. %(id)d.", stage=stage,
                id=result.approval_id), "info")
    return redirect(url_for("pages.detail", object_name=obj.name, record_id=record_id))


def _flag(name: str) -> bool:
    return request.form.get(name, "1") not in ("0", "false", "")


@bp.post("/o/<object_name>/<int:record_id>/stage/work")
def tick(object_name: str, record_id: int):
    obj = context.object_or_404(object_name)
    item, done = request.form.get("item", "")[:63], _flag("done")
    refused = attempt(obj, record_id, lambda: stages.tick_work(
        db(), registry(), obj, record_id, item, actor=actor(), done=done))[1]
    if refused is not None:
        return refused
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("pages.detail", object_name=obj.name, record_id=record_id,
                            _anchor="stage-work"))


@bp.post("/o/<object_name>/<int:record_id>/stage/event")
def key_event(object_name: str, record_id: int):
    obj = context.object_or_404(object_name)
    event, done = request.form.get("event", "")[:63], _flag("done")
    found = next((e for p in registry().processes_of(obj.name) for s in p.stages
                  for e in s.key_events if e.name == event), None)
    wording = {"attachment": _("Attach the document to complete %(item)s",
                               item=label(found.label))} if found else None
    upload = request.files.get("file")
    document = (upload.filename or "", upload.mimetype or "", upload.read()) \
        if upload and upload.filename else None
    refused = attempt(obj, record_id, lambda: stages.complete_event(
        db(), registry(), obj, record_id, event, actor=actor(), done=done,
        attachment=document), wording=wording)[1]
    if refused is not None:
        return refused
    if wants_json():
        return jsonify({"ok": True})
    return redirect(url_for("pages.detail", object_name=obj.name, record_id=record_id,
                            _anchor="key-events"))


def safe_filename(name: str) -> str:
    """A download name without paths, quotes or control characters (CJK kept)."""
    name = re.sub(r'[\x00-\x1f\x7f"\\/:*?<>|]', "_", name.rsplit("/", 1)[-1])
    return name.strip(". ")[:150] or "document"


@bp.get("/attachments/<int:attachment_id>")
def download(attachment_id: int):
    """A key event's document, for whoever may read its record (else 404, not 403: the
    id says nothing about records the user cannot see)."""
    found = stages.attachment(db(), attachment_id)
    if found is None or found["object"] not in registry().objects:
        abort(404)
    context.fetch_or_404(registry().object(found["object"]), found["record_id"],
                       columns=["id"])
    kind = stages.media_type(found["content_type"])  # one stored before uploads were checked
    return send_file(io.BytesIO(found["content"]), as_attachment=True,
                     download_name=safe_filename(found["name"]),
                     mimetype="application/octet-stream" if ACTIVE_CONTENT.search(kind)
                     else kind, max_age=0)


# -- the kanban board ---------------------------------------------------------------------
def process_filter(process: StageProcessDef, others: list[StageProcessDef]) -> list:
    """The records a process holds, as a list filter: its business types; a default
    process, the records no business-type process claims. (A department's process is
    shown with the default's records.)"""
    if process.business_types:
        return [["business_type", "in", list(process.business_types)]]
    claimed = sorted({b for p in others for b in p.business_types})
    return [["business_type", "not_in", claimed]] if claimed else []


def money_field(obj: ObjectDef, shown: dict[str, FieldDef]) -> FieldDef | None:
    """The object's first currency list column, the one a board sums."""
    money = cells.summed(shown[n] for n in obj.list_columns if n in shown)
    return money[0] if money else None


def chosen_process(obj: ObjectDef, processes: list[StageProcessDef], user_filter: Any
                   ) -> StageProcessDef:
    """The process asked for, else the first one the user's records follow."""
    wanted = request.args.get("process")
    if wanted:
        found = next((p for p in processes if p.name == wanted), None)
        if found is None:
            abort(404)
        return found
    for p in processes:
        page = context.records_page(obj, query.ListParams(
            filter=[*process_filter(p, processes), *user_filter], columns=["id"],
            page_size=1, count="none"))
        if page.items:
            return p
    return processes[0]


def board_columns(obj: ObjectDef, process: StageProcessDef, base: list, q: str | None,
                  money: FieldDef | None) -> list[dict[str, Any]]:
    """Each stage's cards (a page of the list), with its count and sum from one GROUP BY
    over the whole board under the user's scope."""
    names = stage_names(process, obj)
    wanted = [obj.title_field, "owner", "version", process.field]
    if money is not None:
        wanted.insert(1, money.name)
    figures = query.grouped_totals(db(), registry(), obj, query.ListParams(filter=base, q=q),
                                   obj.all_fields[process.field],
                                   [money] if money is not None else [], actor=actor())
    columns = []
    for s in process.stages:
        page = context.records_page(obj, query.ListParams(
            filter=[*base, [process.field, "eq", s.name]], q=q, columns=wanted,
            page_size=KANBAN_CARDS, count="none", lookup_titles=True))
        found = figures.get(s.name, {})
        columns.append({"stage": s, "label": names[s.name], "page": page,
                        "count": found.get("_count", 0),
                        "sum": found.get(money.name) if money is not None else None})
    return columns


def editable(obj: ObjectDef, ids: list[int]) -> set[int]:
    """The shown records the user may edit (move): one query per 200 cards."""
    out: set[int] = set()
    try:
        for i in range(0, len(ids), query.MAX_PAGE_SIZE):
            chunk = ids[i:i + query.MAX_PAGE_SIZE]
            page = query.list_records(db(), registry(), obj, query.ListParams(
                filter=[["id", "in", chunk]], columns=["id"], page_size=len(chunk),
                count="none"), actor=actor(), operation="edit")
            out.update(r["id"] for r in page.items)
    except PermissionDenied:
        return set()
    return out


@bp.get("/o/<object_name>/kanban")
def kanban(object_name: str):
    obj = context.object_or_404(object_name)
    permissions.require(db(), actor(), obj, "read")
    processes = registry().processes_of(obj.name)
    if not processes:
        abort(404)
    shown = context.visible(obj)
    state = list_state(obj, saved_views.views_for(db(), actor(), obj.name), shown)
    user_filter = [state.filter] if state.filter not in (None, [], {}) else []
    problems = []
    try:
        process = chosen_process(obj, processes, user_filter)
        base = [*process_filter(process, processes), *user_filter]
        money = money_field(obj, shown)
        columns = board_columns(obj, process, base, state.q or None, money)
    except BadQuery as exc:  # a saved filter that no longer compiles: the board without it
        problems.append(str(exc))
        process = chosen_process(obj, processes, [])
        money = money_field(obj, shown)
        columns = board_columns(obj, process, process_filter(process, processes), None, money)
    ids = [r["id"] for c in columns for r in c["page"].items]
    lost = process.terminal_of("lost")
    reason = obj.all_fields.get(lost.reason_field) if lost and lost.reason_field else None
    return render_template(
        "kanban.html", obj=obj, process=process, processes=processes, columns=columns,
        money=money, movable=editable(obj, ids), state=state, problems=problems,
        reason_field=reason, reasons=[o for o in reason.options if o.active] if reason else [])
