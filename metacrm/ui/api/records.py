"""The JSON API under /api/v1: thin handlers that parse, call the engine and serialise."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from metacrm.engine.access import credentials, login_throttle, permissions, teams, users
from metacrm.engine.actor import Actor
from metacrm.engine.flows import transfer
from metacrm.engine.reading import export as exporter
from metacrm.engine.reading import query
from metacrm.engine.writing import lines, lookup_filters, records
from metacrm.metadata import regions
from metacrm.metadata.describe import describe_object
from metacrm.metadata.messages import Message
from metacrm.metadata.model import ObjectDef
from metacrm.ui.api.openapi import openapi_document
from metacrm.ui.errors import ApiError
from metacrm.ui.input import parse_json, query_int
from metacrm.ui.runtime import db, registry, runtime, streamed

bp = Blueprint("api", __name__, url_prefix="/api/v1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def current_actor() -> Actor:
    """The caller, from a bearer token or (for reads) the web session."""
    if "actor" in g:
        return g.actor
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        actor = users.actor_for_token(db(), header[7:].strip())
        if actor is None:
            raise ApiError(401, "unauthorized", Message("the token is not valid or has expired"))
    elif current_user.is_authenticated and (request.method in SAFE_METHODS
                                            or _valid_csrf_header()):
        actor = current_user.actor
    else:
        raise ApiError(401, "unauthorized", Message(
            "send 'Authorization: Bearer <token>'; get one from POST /api/v1/auth/token"))
    g.actor = actor
    return actor


def _valid_csrf_header() -> bool:
    """Session cookies authorise a write only with the page's CSRF token in a header."""
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except ValidationError:
        return False
    return True


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", Message("the body must be a JSON object"))
    return body


def serialize(obj: ObjectDef, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, f in obj.queryable.items():
        if name in row:
            out[name] = records.to_json(f, row[name])
    titles = {k[:-7]: v for k, v in row.items() if k.endswith("__title") and v is not None}
    if titles:
        out["_titles"] = titles
    return out


def record_json(obj: ObjectDef, row: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """One record as the API gives it: with its lines, each as a record of its own."""
    out = serialize(obj, row)
    if obj.line_fields:
        found = lines.read(db(), registry(), obj, [row["id"]], actor=actor)
        for f in obj.line_fields:
            child = registry().object(f.target)
            out[f.name] = [serialize(child, line) for line in found[f.name][row["id"]]]
    return out


def _int_arg(name: str, default: int) -> int:
    value = query_int(name, default)
    return default if value is None else value


def list_params(deleted: bool = False) -> query.ListParams:
    raw_filter = request.args.get("filter")
    try:
        parsed = parse_json(raw_filter, "filter") if raw_filter else None
    except ValueError:
        raise ApiError(400, "bad_query", Message("filter must be JSON, e.g. %(example)s",
                                                 example='[["amount","gt",1000]]'),
                       {"filter": Message("is not valid JSON")}) from None
    columns = [c for c in request.args.get("fields", "").split(",") if c] or None
    return query.ListParams(
        filter=parsed, sort=request.args.get("sort") or None, q=request.args.get("q") or None,
        page=_int_arg("page", 1), page_size=_int_arg("page_size", 20),
        cursor=request.args.get("cursor") or None, columns=columns,
        count=request.args.get("count", "capped"), deleted=deleted,
        lookup_titles=request.args.get("titles", "").lower() in ("1", "true", "yes"))


def page_response(obj: ObjectDef, page: query.Page) -> Response:
    return jsonify({"items": [serialize(obj, r) for r in page.items], "total": page.total,
                    "total_exact": page.total_exact, "page": page.page,
                    "page_size": page.page_size, "next_cursor": page.next_cursor})


@bp.post("/auth/token")
def issue_token():
    """A bearer token for a username and password. Failures count on the same key as the
    sign-in page's, so neither is a way around the other's slowing down."""
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "bad_request", Message("username and password are required"),
                       {k: Message("is required") for k in ("username", "password")
                        if not isinstance(body.get(k), str)})
    session = db()
    key = login_throttle.key_for(username, request.remote_addr)
    wait = login_throttle.wait_seconds(session, key)
    if wait:
        raise ApiError(429, "too_many_attempts",
                       Message("too many failed attempts; try again in %(seconds)d seconds",
                               seconds=wait),
                       headers={"Retry-After": str(wait)})
    actor = users.authenticate(session, username, password)
    if actor is None:
        login_throttle.record_failure(session, key)
        session.commit()  # counted although the answer is an error (which rolls back)
        raise ApiError(401, "unauthorized", Message("wrong username or password"))
    login_throttle.clear(session, key)
    token, expires_at = users.issue_token_until(
        session, actor, dt.timedelta(days=runtime().settings.token_days))
    return jsonify({"token": token, "expires_at": expires_at.isoformat(),
                    "user": {"id": actor.user_id, "username": actor.username}})


@bp.delete("/auth/token")
def revoke_token():
    """Ends the bearer token the request was sent with."""
    current_actor()
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise ApiError(400, "bad_request", Message(
            "send the token to revoke as 'Authorization: Bearer <token>'"))
    credentials.revoke_token(db(), header[7:].strip())
    return Response(status=204)


@bp.delete("/auth/tokens")
def sign_out_everywhere():
    """Ends every token and browser session of the caller, this one included."""
    ended = credentials.end_everything(db(), current_actor().user_id)
    return jsonify({"ended": ended})


@bp.get("/objects")
def objects():
    current_actor()
    reg = registry()
    groups = {grp.name: grp for grp in reg.groups}
    return jsonify({"items": [
        {"name": o.name, "label": o.label.as_dict(), "icon": o.icon, "group": o.group,
         "group_label": groups[o.group].label.as_dict() if o.group in groups else None,
         "url": url_for(".list_records", object_name=o.name)}
        for o in reg.active_objects]})


@bp.get("/objects/<object_name>")
def object_definition(object_name: str):
    actor = current_actor()
    obj = registry().object(object_name)
    return jsonify(describe_object(obj, permissions.hidden_fields(db(), actor, obj,
                                                                  registry())))


@bp.get("/objects/<object_name>/records")
def list_records(object_name: str):
    actor = current_actor()
    obj = registry().object(object_name)
    page = query.list_records(db(), registry(), obj, list_params(), actor=actor,
                              ctx=query.filter_context_of(db(), runtime().settings.timezone))
    return page_response(obj, page)


@bp.post("/objects/<object_name>/records")
def create_record(object_name: str):
    actor = current_actor()
    obj = registry().object(object_name)
    row = records.create(db(), registry(), obj, json_body(), actor=actor)
    response = jsonify(record_json(obj, row, actor))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_record", object_name=obj.name, record_id=row["id"])
    return response


@bp.get("/objects/<object_name>/records/<int:record_id>")
def get_record(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    return jsonify(record_json(obj, records.get(db(), registry(), obj, record_id, actor=actor),
                               actor))


@bp.patch("/objects/<object_name>/records/<int:record_id>")
def update_record(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    version = body.pop("version", None)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError(422, "validation_failed", Message(
            "send the version you read, to avoid overwriting someone else's change"),
            {"version": Message("is required")})
    row = records.update_record(db(), registry(), obj, record_id, body, actor=actor,
                                version=version)
    out = record_json(obj, row, actor)
    return jsonify(out)


@bp.delete("/objects/<object_name>/records/<int:record_id>")
def delete_record(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    version = _int_arg("version", 0) or None
    records.delete(db(), registry(), obj, record_id, actor=actor, version=version)
    return Response(status=204)


@bp.post("/objects/<object_name>/records/<int:record_id>/restore")
def restore_record(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    row = records.restore(db(), registry(), obj, record_id, actor=actor)
    out = record_json(obj, row, actor)
    return jsonify(out)


@bp.get("/objects/<object_name>/records/<int:record_id>/history")
def record_history(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    entries = records.history(db(), registry(), obj, record_id, actor=actor)
    return jsonify({"items": [{**e, "at": e["at"].isoformat()} for e in entries]})


@bp.get("/objects/<object_name>/recycle-bin")
def recycle_bin(object_name: str):
    actor = current_actor()
    obj = registry().object(object_name)
    permissions.require(db(), actor, obj, "delete")  # restoring undoes a delete
    return page_response(obj, query.list_records(db(), registry(), obj, list_params(True),
                                                 actor=actor))


@bp.get("/me")
def me():
    """The caller and what their roles allow per object: what a client should offer."""
    actor = current_actor()
    access = permissions.access_of(db(), actor)
    return jsonify({
        "user": {"id": actor.user_id, "username": actor.username, "is_admin": actor.is_admin,
                 "department_id": actor.department_id, "language": actor.language},
        "roles": sorted(access.roles),
        "objects": {o.name: {op: permissions.granted(db(), actor, o, op)
                             for op in permissions.OPERATIONS}
                    for o in registry().active_objects}})


@bp.get("/objects/<object_name>/records/<int:record_id>/permissions")
def record_permissions(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    records.get(db(), registry(), obj, record_id, actor=actor)  # 404 outside the read scope
    return jsonify(permissions.record_operations(db(), actor, obj, registry().table(obj),
                                                 record_id, permissions.OPERATIONS))


@bp.get("/objects/<object_name>/records/<int:record_id>/team")
def team_members(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    found = teams.members(db(), registry(), actor, obj, record_id)
    return jsonify({"items": [
        {"user_id": m.user_id, "display_name": m.display_name, "access": m.access,
         "expires_on": m.expires_on.isoformat() if m.expires_on else None,
         "is_owner": m.is_owner, "expired": m.expired} for m in found]})


@bp.post("/objects/<object_name>/records/<int:record_id>/team")
def add_team_member(object_name: str, record_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    user_id, until = body.get("user_id"), body.get("expires_on")
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ApiError(422, "validation_failed", Message("user_id is required"),
                       {"user_id": Message("must be a user id")})
    try:
        expires_on = dt.date.fromisoformat(until) if until else None
    except (TypeError, ValueError):
        raise ApiError(422, "validation_failed", Message("expires_on must be a date"),
                       {"expires_on": Message("must be a date (YYYY-MM-DD)")}) from None
    teams.add_member(db(), registry(), actor, obj, record_id, user_id,
                     body.get("access", "read"), expires_on)
    return team_members(object_name, record_id), 201


@bp.delete("/objects/<object_name>/records/<int:record_id>/team/<int:user_id>")
def remove_team_member(object_name: str, record_id: int, user_id: int):
    actor = current_actor()
    obj = registry().object(object_name)
    teams.remove_member(db(), registry(), actor, obj, record_id, user_id)
    return Response(status=204)


@bp.post("/objects/<object_name>/transfer")
def transfer_records(object_name: str):
    """Body: {"ids": [...], "owner": id, "old_owner": remove|read|write, "cascade": [...]}."""
    actor = current_actor()
    obj = registry().object(object_name)
    body = json_body()
    ids, owner = body.get("ids"), body.get("owner")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                            for i in ids):
        raise ApiError(422, "validation_failed", Message("ids must be a list of record ids"),
                       {"ids": Message("must be a list of record ids")})
    if isinstance(owner, bool) or not isinstance(owner, int):
        raise ApiError(422, "validation_failed", Message("owner must be a user id"),
                       {"owner": Message("must be a user id")})
    cascade = body.get("cascade") or []
    if not isinstance(cascade, list) or not all(isinstance(c, str) for c in cascade):
        raise ApiError(422, "validation_failed",
                       Message("cascade must be a list of 'object.field'"),
                       {"cascade": Message("must be a list of 'object.field'")})
    result = transfer.transfer(db(), registry(), actor, obj, ids, owner,
                               old_owner=body.get("old_owner", "remove"), cascade=cascade)
    return jsonify({"moved": result.moved, "total": result.total})


@bp.get("/objects/<object_name>/export")
def export_records(object_name: str):
    """The records the caller may export, as CSV (list filters, sort and fields apply)."""
    actor = current_actor()
    obj = registry().object(object_name)
    lines = exporter.rows(db(), registry(), obj, list_params(), actor=actor,
                          language=actor.language)
    first = next(lines)  # the permission check and query errors happen before streaming

    def everything():
        yield first
        yield from lines

    return streamed(exporter.to_csv(everything()),
                    mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{obj.name}.csv"'})


@bp.get("/openapi.json")
def openapi():
    """Public, but it describes only what the caller may see: a signed-in caller's
    visible fields; to anyone else, the fields no role hides."""
    reg = registry()
    if request.headers.get("Authorization") or current_user.is_authenticated:
        actor = current_actor()
        hidden = {o.name: permissions.hidden_fields(db(), actor, o, reg)
                  for o in reg.active_objects}
    else:
        hidden = permissions.hidden_by_some_role(db(), reg)
    return jsonify(openapi_document(reg, request.host_url.rstrip("/") + bp.url_prefix,
                                    hidden))


# -- what forms offer as the user types or picks ------------------------------------------
@bp.get("/objects/<object_name>/lookup")
def lookup(object_name: str):
    """Type-ahead candidates: matches over the target's search fields, narrowed by the
    lookup's filter when ``field=<object>.<field>`` names it, given the edited record's
    values as ``record[<field>]=<value>``."""
    actor = current_actor()
    obj = registry().object(object_name)
    extra = candidates_filter(obj)
    page = query.list_records(db(), registry(), obj, query.ListParams(
        q=request.args.get("q", "")[:100] or None, columns=[obj.title_field], page_size=10,
        count="none", sort=obj.title_field), actor=actor,
        **({} if extra is None else {"extra": extra}))
    return jsonify([{"id": r["id"], "title": r[obj.title_field]} for r in page.items])


def candidates_filter(target: ObjectDef):
    """The lookup filter of the field the type-ahead serves, as a condition on ``target``."""
    source_name, _, field_name = request.args.get("field", "").partition(".")
    if not field_name:
        return None
    source = registry().object(source_name)
    f = source.all_fields.get(field_name)
    if f is None or f.target != target.name:
        raise ApiError(400, "bad_query", Message("field must name a lookup to this object"),
                       {"field": Message("is not a lookup to this object")})
    record = {k[7:-1]: v for k, v in request.args.items()
              if k.startswith("record[") and k.endswith("]")}
    return lookup_filters.candidates_condition(registry(), source, f.name, record)


@bp.get("/regions/children", defaults={"code": None})
@bp.get("/regions/<code>/children")
def region_children(code: str | None):
    """The regions under a province or city (the provinces without a code): the region
    widget's next select (the signed-in pages read it with their session)."""
    current_actor()
    if code is not None and regions.region(code) is None:
        raise ApiError(404, "not_found", Message("no region %(code)s", code=code[:12]))
    return jsonify([{"code": r.code, "name": r.name, "level": r.level}
                    for r in regions.children(code)])
