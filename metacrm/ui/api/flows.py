"""The JSON API of stage paths, approvals, todos and notifications under /api/v1.

Same authentication as ``api``: a bearer token, or the web session (a write then needs
the page's CSRF token in ``X-CSRFToken``). Thin handlers: parse, call the engine,
serialise; every write commits once, at the end, so it is one transaction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, jsonify, request, url_for

from metacrm import clock
from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.engine.flows import (
    approval_rules,
    approvals,
    notifications,
    stage_moves,
    stages,
    todos,
)
from metacrm.engine.writing import records
from metacrm.metadata.flows import StageDef, StageProcessDef
from metacrm.metadata.labels import Label
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef
from metacrm.ui.api.records import current_actor, json_body, record_json
from metacrm.ui.errors import ApiError
from metacrm.ui.flows.notifications import wording
from metacrm.ui.i18n import translate
from metacrm.ui.input import query_int
from metacrm.ui.runtime import db, registry

bp = Blueprint("api_flows", __name__, url_prefix="/api/v1")
RECORD = "/objects/<object_name>/records/<int:record_id>"


# -- parsing --------------------------------------------------------------------------------
def _invalid(field: str, problem: Message) -> ApiError:
    return ApiError(422, "validation_failed",
                    Message("%(field)s %(problem)s", field=field, problem=problem),
                    {field: problem})


def _optional_body() -> dict[str, Any]:
    """Actions whose body is optional (a comment): no body is an empty one."""
    return json_body() if request.get_data(cache=True) else {}


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(name, Message("is required"))
    return value


def _comment(body: Mapping[str, Any]) -> str | None:
    value = body.get("comment")
    if value is not None and not isinstance(value, str):
        raise _invalid("comment", Message("must be text"))
    return value


def _flag(value: Any, name: str, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes")
    raise _invalid(name, Message("must be true or false"))


def _user_id(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, Message("must be a user id"))
    return value


def _chosen(body: Mapping[str, Any]) -> dict[str, list[int]]:
    chosen = body.get("chosen") or {}
    if not isinstance(chosen, dict) or not all(
            isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                          for i in ids) for ids in chosen.values()):
        raise _invalid("chosen", Message("must map step names to lists of user ids"))
    return chosen


def _int_arg(name: str, default: int | None, low: int = 1, high: int = 200) -> int | None:
    value = query_int(name, None)
    return default if value is None else max(low, min(high, value))


# -- serialising ------------------------------------------------------------------------------
def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _plain(row: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: _iso(row.get(n)) for n in names}


def _user(user_id: int | None, names: Mapping[int, str]) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "name": names.get(user_id)}


def _object_label(name: str | None) -> dict[str, str] | None:
    obj = registry().objects.get(name) if name else None
    return obj.label.as_dict() if obj else None


def _stage_json(process: StageProcessDef, obj: ObjectDef, s: StageDef) -> dict[str, Any]:
    return {"name": s.name, "label": stages.stage_label(process, obj, s).as_dict(),
            "type": s.type, "win_rate": s.win_rate, "required": list(s.required),
            "work": [{"name": w.name, "label": w.label.as_dict(), "due_days": w.due_days}
                     for w in s.work],
            "key_events": [{"name": e.name, "label": e.label.as_dict(), "share": e.share,
                            "attachment": e.attachment, "required": e.required}
                           for e in s.key_events],
            "approval": s.approval}


def stage_json(obj: ObjectDef, row: Mapping[str, Any]) -> dict[str, Any]:
    """Where a record stands in its process: the path bar as data."""
    session = db()
    found = stages.state(session, registry(), obj, row)
    if found is None:
        raise ApiError(404, "no_stage_process", Message("this record follows no stage process"))
    process, current = found.process, found.current
    done = stages.checks(session, obj, row["id"], current.name) if current else {}
    history = stages.history(session, obj, row["id"])
    names = users.display_names(session, {u for h in history for u in (
        h["entered_by"], h["left_by"]) if u} | {c["done_by"] for c in done.values()
                                                if c["done_by"]})

    def check(c: Mapping[str, Any]) -> dict[str, Any]:
        out = {"item": c["item"], "done_by": _user(c["done_by"], names),
               "done_at": _iso(c["done_at"])}
        if c["kind"] == "event":
            out["attachment"] = {"id": c["attachment_id"], "name": c["attachment_name"]} \
                if c["attachment_id"] else None
        return out

    return {
        "process": {"name": process.name, "label": process.label.as_dict(),
                    "field": process.field, "win_rate_field": process.win_rate_field},
        "stages": [_stage_json(process, obj, s) for s in process.stages],
        "current": current.name if current else None,
        "entered_at": _iso(found.entered_at),
        "win_rate": found.win_rate,
        "done": {"work": [check(c) for (kind, _), c in sorted(done.items()) if kind == "work"],
                 "events": [check(c) for (kind, _), c in sorted(done.items())
                            if kind == "event"]},
        "next": found.next.name if found.next else None,
        "missing": [{"kind": m.kind, "name": m.name, "label": m.label.as_dict(),
                     "stage": m.stage, "message": translate(m.message)} for m in found.missing],
        "approval_id": found.approval["id"] if found.approval else None,
        "version": row.get("version"),
        "history": [{**_plain(h, "stage", "from_stage", "direction", "entered_at", "left_at"),
                     "entered_by": _user(h["entered_by"], names),
                     "left_by": _user(h["left_by"], names)} for h in history],
    }


def _flow_label(flow_name: str) -> Label:
    flow = registry().approval_flows.get(flow_name)
    return flow.label if flow else Label(flow_name, flow_name)


def _approval_json(row: Mapping[str, Any], titles: Mapping[tuple[str, int], Any],
                   names: Mapping[int, str]) -> dict[str, Any]:
    flow = registry().approval_flows.get(row["flow"])
    step = flow.steps[row["step"]] if flow and row["step"] < len(flow.steps) else None
    out = {
        "id": row["id"], "flow": row["flow"], "flow_label": _flow_label(row["flow"]).as_dict(),
        "object": row["object"], "object_label": _object_label(row["object"]),
        "record_id": row["record_id"],
        "record_title": _iso(titles.get((row["object"], row["record_id"]))),
        **_plain(row, "status", "trigger", "stage_from", "stage_to", "submitted_at",
                 "finished_at", "round"),
        "submitter": _user(row["submitter_id"], names),
        "step": {"index": row["step"], "name": step.name if step else None,
                 "label": step.label.as_dict() if step else None},
        "chosen": row["chosen"],
    }
    for key in ("task_id", "task_status", "task_comment", "task_at"):
        if key in row:  # an inbox item: the caller's task
            out[key] = _iso(row[key])
    return out


def _people(approval_rows: Iterable[Mapping[str, Any]], task_rows: Iterable[Mapping[str, Any]] = (),
            events: Iterable[Mapping[str, Any]] = ()) -> dict[int, str]:
    ids = {r["submitter_id"] for r in approval_rows} | {t["user_id"] for t in task_rows}
    for ev in events:
        ids |= {ev["actor_id"], *(ev["details"].get(k) for k in ("to", "user"))}
        ids |= set(ev["details"].get("users") or ())
    return users.display_names(db(), {i for i in ids if isinstance(i, int)})


def _event_json(ev: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    return {**_plain(ev, "id", "at", "action", "round", "step", "comment"),
            "actor": _user(ev["actor_id"], names), "details": ev["details"]}


def approvals_json(rows: list[dict[str, Any]], *, timeline: bool = False
                   ) -> list[dict[str, Any]]:
    """Approvals with their records' titles (and timelines), in a fixed number of reads."""
    session = db()
    titles = approvals.titles(session, registry(), rows)
    events = approvals.timeline(session, [r["id"] for r in rows]) if timeline and rows else []
    names = _people(rows, events=events)
    out = [_approval_json(r, titles, names) for r in rows]
    if timeline:
        for item in out:
            item["timeline"] = [_event_json(ev, names) for ev in events
                                if ev["approval_id"] == item["id"]]
    return out


def approval_detail(approval_id: int, actor: Actor) -> dict[str, Any]:
    """One approval with its steps, tasks, timeline and what the caller may do now."""
    session = db()
    row = approvals.get(session, approval_id)
    found_tasks = approvals.tasks(session, approval_id)
    events = approvals.timeline(session, [approval_id])
    names = _people([row], found_tasks, events)
    out = _approval_json(row, approvals.titles(session, registry(), [row]), names)
    flow = registry().approval_flows.get(row["flow"])
    mine = row["status"] == "pending" and any(
        t["user_id"] == actor.user_id and t["status"] == "active" and t["round"] == row["round"]
        and t["step"] == row["step"] for t in found_tasks)
    out.update({
        "steps": [{"index": i, "name": s.name, "label": s.label.as_dict(), "mode": s.mode,
                   "approvers": s.approvers.type} for i, s in enumerate(flow.steps)]
        if flow else [],
        "tasks": [{**_plain(t, "id", "round", "step", "status", "kind", "waits_for",
                            "created_at", "decided_at", "comment"),
                   "user": _user(t["user_id"], names)} for t in found_tasks],
        "timeline": [_event_json(ev, names) for ev in events],
        "actions": {"approve": mine, "reject": mine, "hand_over": mine, "add_approver": mine,
                    "withdraw": row["status"] == "pending"
                    and row["submitter_id"] == actor.user_id},
    })
    return out


def _todo_json(row: Mapping[str, Any], titles: Mapping[tuple[str, int], Any],
               now: dt.datetime) -> dict[str, Any]:
    label = None
    process = registry().stage_processes.get((row["params"] or {}).get("process", ""))
    stage = process.stage(row["stage"]) if process else None
    work = stage.work_item(row["item"]) if stage and row["item"] else None
    if work is not None:
        label = work.label.as_dict()
    due = row["due_at"]
    return {**_plain(row, "id", "kind", "object", "record_id", "stage", "item", "params",
                     "due_at", "created_at", "handled_at"),
            "object_label": _object_label(row["object"]),
            "record_title": _iso(titles.get((row["object"], row["record_id"]))),
            "label": label,
            "overdue": bool(due and row["handled_at"] is None and due < now)}


# -- stage paths ------------------------------------------------------------------------------
def _readable(object_name: str, record_id: int, actor: Actor) -> tuple[ObjectDef, dict]:
    obj = registry().object(object_name)
    return obj, records.get(db(), registry(), obj, record_id, actor=actor)


@bp.get(RECORD + "/stage")
def stage_state(object_name: str, record_id: int):
    obj, row = _readable(object_name, record_id, current_actor())
    return jsonify(stage_json(obj, row))


@bp.post(RECORD + "/stage")
def move_stage(object_name: str, record_id: int):
    """200 with the record when it moved; 202 with the approval the move waits for."""
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    values, version = body.get("values") or {}, body.get("version")
    if not isinstance(values, dict):
        raise _invalid("values", Message("must be an object of field values"))
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise _invalid("version", Message("must be the version you read"))
    result = stage_moves.move(db(), registry(), obj, record_id, _text(body, "to"), actor=actor,
                         values=values, version=version, chosen=_chosen(body))
    if result.moved:
        out = record_json(obj, result.record, actor)
        return jsonify(out)
    out = {"approval_id": result.approval_id,
           "approval": approval_detail(result.approval_id, actor)}
    response = jsonify(out)
    response.status_code = 202
    response.headers["Location"] = url_for(".get_approval", approval_id=result.approval_id)
    return response


@bp.post(RECORD + "/stage/work")
def tick_work(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    stages.tick_work(db(), registry(), obj, record_id, _text(body, "item"), actor=actor,
                     done=_flag(body.get("done"), "done"))
    return _stage_after_write(obj, record_id, actor)


@bp.post(RECORD + "/stage/events")
def complete_event(object_name: str, record_id: int):
    """JSON ``{"event", "done", "attachment": {"name", "content_type", "base64"}}``, or
    multipart/form-data with the fields ``event``, ``done`` and the document as ``file``."""
    actor = current_actor()
    obj = registry().object(object_name)
    if request.mimetype == "multipart/form-data":
        body: Mapping[str, Any] = request.form
        upload = request.files.get("file")
        attachment = (upload.filename or "document", upload.mimetype, upload.read()) \
            if upload else None
    else:
        body = json_body()
        attachment = _attachment(body.get("attachment"))
    stages.complete_event(db(), registry(), obj, record_id, _text(body, "event"), actor=actor,
                          done=_flag(body.get("done"), "done"), attachment=attachment)
    return _stage_after_write(obj, record_id, actor)


def _attachment(raw: Any) -> tuple[str, str, bytes] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("base64"), str):
        raise _invalid("attachment", Message("must be {name, content_type, base64}"))
    try:
        content = base64.b64decode(raw["base64"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("attachment", Message("base64 is not valid Base64")) from None
    return (str(raw.get("name") or "document"),
            str(raw.get("content_type") or "application/octet-stream"), content)


def _stage_after_write(obj: ObjectDef, record_id: int, actor: Actor):
    out = stage_json(obj, records.get(db(), registry(), obj, record_id, actor=actor))
    return jsonify(out)


# -- approvals of a record --------------------------------------------------------------------
@bp.get(RECORD + "/approvals")
def record_approvals(object_name: str, record_id: int):
    obj, row = _readable(object_name, record_id, current_actor())
    found = approvals.of_record(db(), obj, record_id)
    return jsonify({
        "items": approvals_json(found, timeline=True),
        "submittable": [{"name": f.name, "label": f.label.as_dict(),
                         "chosen_steps": [s.name for s in f.chosen_steps]}
                        for f in approval_rules.submittable(db(), registry(), obj, row)]})


@bp.post(RECORD + "/approvals")
def submit_approval(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    name = _text(body, "flow")
    flow = registry().approval_flows.get(name)
    if flow is not None and flow.trigger == "stage":
        raise _invalid("flow", Message("is a stage approval: move the record to start it"))
    approval_id = approvals.submit(db(), registry(), obj, record_id, name, actor=actor,
                                   chosen=_chosen(body), comment=_comment(body))
    out = approval_detail(approval_id, actor)
    response = jsonify(out)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_approval", approval_id=approval_id)
    return response


# -- the approval inbox and actions -----------------------------------------------------------
@bp.get("/approvals")
def inbox():
    actor = current_actor()
    box = request.args.get("box", "pending")
    found = approvals.inbox(db(), actor, box, limit=_int_arg("limit", 100) or 100)
    return jsonify({"box": box, "items": approvals_json(found)})


@bp.get("/approvals/<int:approval_id>")
def get_approval(approval_id: int):
    actor = current_actor()
    approvals.visible(db(), registry(), approval_id, actor=actor)
    return jsonify(approval_detail(approval_id, actor))


def _act(approval_id: int, action: Callable[[Actor, dict[str, Any]], None]):
    actor = current_actor()
    approvals.visible(db(), registry(), approval_id, actor=actor)
    action(actor, _optional_body())
    out = approval_detail(approval_id, actor)
    return jsonify(out)


@bp.post("/approvals/<int:approval_id>/approve")
def approve(approval_id: int):
    return _act(approval_id, lambda actor, body: approvals.approve(
        db(), registry(), approval_id, actor=actor, comment=_comment(body)))


@bp.post("/approvals/<int:approval_id>/reject")
def reject(approval_id: int):
    return _act(approval_id, lambda actor, body: approvals.reject(
        db(), registry(), approval_id, actor=actor, comment=_comment(body)))


@bp.post("/approvals/<int:approval_id>/withdraw")
def withdraw(approval_id: int):
    return _act(approval_id, lambda actor, body: approvals.withdraw(
        db(), registry(), approval_id, actor=actor, comment=_comment(body)))


@bp.post("/approvals/<int:approval_id>/hand-over")
def hand_over(approval_id: int):
    return _act(approval_id, lambda actor, body: approvals.hand_over(
        db(), registry(), approval_id, actor=actor, to_user=_user_id(body, "to_user"),
        comment=_comment(body)))


@bp.post("/approvals/<int:approval_id>/add-approver")
def add_approver(approval_id: int):
    return _act(approval_id, lambda actor, body: approvals.add_approver(
        db(), registry(), approval_id, actor=actor, user_id=_user_id(body, "user_id"),
        position=body.get("position", "before"), comment=_comment(body)))


# -- the todo centre and notifications --------------------------------------------------------
@bp.get("/todos")
def todo_centre():
    """Approvals waiting for the caller, their open todos (or handled ones with
    ``handled=1``) and the navigation's counts."""
    actor = current_actor()
    session = db()
    kind = request.args.get("kind") or None
    if kind is not None and kind not in todos.KINDS:
        raise ApiError(400, "bad_query", Message("kind must be one of %(kinds)s",
                                                 kinds=", ".join(todos.KINDS)),
                       {"kind": Message("unknown kind")})
    handled = _flag(request.args.get("handled"), "handled", default=False)
    pending = approvals.inbox(session, actor, "pending")
    found = todos.open_todos(session, actor.user_id, kind=kind, handled=handled)
    titles = approvals.titles(session, registry(), found)
    now = clock.now()
    return jsonify({"approvals": approvals_json(pending),
                    "todos": [_todo_json(r, titles, now) for r in found],
                    "counts": todos.counts(session, actor.user_id)})


@bp.post("/todos/<int:todo_id>/handled")
def todo_handled(todo_id: int):
    """Body optional: ``{"handled": false}`` reopens the todo."""
    actor = current_actor()
    handled = _flag(_optional_body().get("handled"), "handled")
    todos.handle(db(), actor.user_id, todo_id, handled)
    counts = todos.counts(db(), actor.user_id)
    return jsonify({"id": todo_id, "handled": handled, "counts": counts})


def _group(kind: str) -> str | None:
    found = notifications.KINDS.get(kind)
    return found.group if found else None


@bp.get("/notifications")
def notification_list():
    """Newest first; ``unread=1`` for unread only, ``group=`` one group of kinds,
    ``before=<id>`` for the next page. ``text`` is the notification in the caller's
    language, as the web page words it."""
    actor = current_actor()
    session = db()
    group = request.args.get("group") or None
    if group is not None and group not in notifications.GROUPS:
        raise ApiError(400, "bad_query", Message("group must be one of %(groups)s",
                                                 groups=", ".join(notifications.GROUPS)),
                       {"group": Message("unknown group")})
    found = notifications.listing(
        session, actor.user_id, unread_only=_flag(request.args.get("unread"), "unread", False),
        limit=_int_arg("limit", 50) or 50,
        before=_int_arg("before", None, low=1, high=2**62),
        kinds=notifications.kinds_of(group) if group else None)
    titles = approvals.titles(session, registry(), [n for n in found if n["object"]])
    names = users.display_names(session, {n["actor_id"] for n in found if n["actor_id"]})
    return jsonify({
        "items": [{**_plain(n, "id", "kind", "object", "record_id", "approval_id", "params",
                            "created_at", "read_at"),
                   "text": wording(n), "group": _group(n["kind"]),
                   "object_label": _object_label(n["object"]),
                   "record_title": _iso(titles.get((n["object"], n["record_id"]))),
                   "actor": _user(n["actor_id"], names), "read": n["read_at"] is not None}
                  for n in found],
        "unread": notifications.unread_count(session, actor.user_id)})


@bp.post("/notifications/read")
def notifications_read():
    """``{"ids": [...]}`` marks those read, no ids marks all; ``"read": false`` unreads."""
    actor = current_actor()
    body = _optional_body()
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise _invalid("ids", Message("must be a list of notification ids"))
    marked = notifications.mark_read(db(), actor.user_id, ids,
                                     read=_flag(body.get("read"), "read"))
    unread = notifications.unread_count(db(), actor.user_id)
    return jsonify({"marked": marked, "unread": unread})
