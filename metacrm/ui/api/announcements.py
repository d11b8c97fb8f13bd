"""The announcements (公告) under /api/v1: every user lists them and marks them read;
administrators publish and delete them (the engine refuses others: 403).

Same authentication as ``api``; each view is one unit of work (the app factory wraps it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, request

from metacrm.engine.access import users
from metacrm.engine.flows import announcements
from metacrm.metadata.messages import Message
from metacrm.ui.api.records import current_actor, json_body
from metacrm.ui.errors import ApiError
from metacrm.ui.input import query_int
from metacrm.ui.runtime import db

bp = Blueprint("api_announcements", __name__, url_prefix="/api/v1")


def _invalid(field: str, problem: Message) -> ApiError:
    return ApiError(422, "validation_failed",
                    Message("%(field)s %(problem)s", field=field, problem=problem),
                    {field: problem})


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _json(row: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    by = row["created_by"]
    return {"id": row["id"], "title": row["title"], "body": row["body"],
            "created_by": None if by is None else {"id": by, "name": names.get(by)},
            "created_at": _iso(row["created_at"]), "expires_at": _iso(row["expires_at"]),
            "read_at": _iso(row.get("read_at")), "read": row.get("read_at") is not None}


def _expiry(body: dict[str, Any]) -> dt.datetime | None:
    raw = body.get("expires_at")
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise _invalid("expires_at", Message("must be a date and time in ISO 8601"))
    return value


@bp.get("/announcements")
def listing():
    """The caller's announcements (not expired), newest first; ``unread=1`` for unread."""
    actor = current_actor()
    session = db()
    unread = request.args.get("unread", "").lower() in ("1", "true", "yes")
    limit = max(1, min(200, query_int("limit", 50) or 50))
    found = announcements.for_user(session, actor.uid, unread_only=unread, limit=limit)
    names = users.display_names(session, {a["created_by"] for a in found
                                          if a["created_by"] is not None})
    return jsonify({"items": [_json(a, names) for a in found],
                    "unread": announcements.unread_count(session, actor.uid)})


@bp.post("/announcements")
def create():
    """An administrator publishes: ``{"title", "body", "expires_at"?}``."""
    actor = current_actor()
    body = json_body()
    session = db()
    new_id = announcements.create(session, actor, title=body.get("title"),
                                  body=body.get("body", ""), expires_at=_expiry(body))
    return jsonify(_json(announcements.get(session, new_id), {})), 201


@bp.delete("/announcements/<int:announcement_id>")
def delete(announcement_id: int):
    announcements.delete_announcement(db(), current_actor(), announcement_id)
    return "", 204


@bp.post("/announcements/read")
def mark_read():
    """``{"ids": [...]}`` marks those read; no body or no ids marks all."""
    actor = current_actor()
    body = json_body() if request.get_data(cache=True) else {}
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in ids)):
        raise _invalid("ids", Message("must be a list of announcement ids"))
    marked = announcements.mark_read(db(), actor.uid, ids)
    return jsonify({"marked": marked, "unread": announcements.unread_count(db(), actor.uid)})
