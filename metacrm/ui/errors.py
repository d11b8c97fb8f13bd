"""Domain exceptions → errors: under /api/ the JSON body ``{"error": {"code", "message",
"fields"}}``; on every other path the error page, worded in the user's language, with a
way back."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from metacrm.engine.errors import (
    ApprovalConflict,
    AutomationLoop,
    BadQuery,
    ObjectNotFound,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    StageRefused,
    StaleVersion,
    ValidationFailed,
)
from metacrm.metadata.messages import Message
from metacrm.metadata.problems import DefinitionError
from metacrm.ui.i18n import label, translate
from metacrm.ui.input import InputRefused
from metacrm.ui.redirects import local_target
from metacrm.ui.runtime import registry

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, fields: dict | None = None, **extra):
    body = {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(e: ApiError):
        if not _is_api():
            return _page(e.status, e.code, translate(e.message))
        fields = {k: translate(v) if isinstance(v, str) else v
                  for k, v in (e.fields or {}).items()}
        body, status = error_response(e.status, e.code, translate(e.message), fields)
        return body, status, e.headers

    @app.errorhandler(ValidationFailed)
    def _invalid(e: ValidationFailed):
        if not _is_api():
            problems = [translate(Message("%(field)s: %(problem)s", field=_field_label(k),
                                           problem=translate(v))) for k, v in e.fields.items()]
            return _page(422, e.code, "; ".join(problems) or translate(str(e)))
        extra = {"row": e.row} if e.row is not None else {}
        if e.hook:
            extra["hook"] = e.hook
        return error_response(422, e.code, translate(e.args[0]),
                              {k: translate(v) for k, v in e.fields.items()}, **extra)

    @app.errorhandler(InputRefused)
    def _refused_input(e: InputRefused):
        problem = translate(e.problem)
        if _is_api():
            return error_response(e.status, e.code, translate(Message(
                "%(field)s: %(problem)s", field=e.field, problem=problem)), {e.field: problem})
        return _page(e.status, e.code, translate(Message(
            "%(field)s: %(problem)s", field=_field_label(e.field), problem=problem)))

    @app.errorhandler(BadQuery)
    def _bad_query(e: BadQuery):
        if not _is_api():
            return _page(400, e.code, _("This list cannot be shown with the filter, sort or "
                                        "page asked for."), note=translate(e.args[0]))
        reason = translate(e.args[0])
        return error_response(400, e.code, reason, {e.field: reason} if e.field else None)

    @app.errorhandler(RecordNotFound)
    @app.errorhandler(ObjectNotFound)
    def _not_found(e):
        return _page_or_json(404, "not_found", str(e))

    @app.errorhandler(PermissionDenied)
    def _forbidden(e):
        return _page_or_json(403, e.code, translate(e.args[0]) if e.args else "not allowed")

    @app.errorhandler(StaleVersion)
    def _stale(e: StaleVersion):
        if not _is_api():
            return _page(409, e.code, _("Someone else changed this record meanwhile. "
                                        "Reload it and try again."))
        return error_response(409, e.code, str(e), current_version=e.current_version)

    @app.errorhandler(RecordLocked)
    @app.errorhandler(ApprovalConflict)
    def _conflict(e):
        return _page_or_json(409, e.code, translate(e.args[0]) if e.args else e.code)

    @app.errorhandler(AutomationLoop)
    def _automation_loop(e: AutomationLoop):
        return _page_or_json(422, e.code, translate(e.args[0]))

    @app.errorhandler(StageRefused)
    def _stage_refused(e: StageRefused):
        missing = [{"kind": m.kind, "name": m.name, "stage": m.stage,
                    "message": translate(m.message)} for m in e.missing]
        if not _is_api():
            return _page(422, e.code, "; ".join([translate(str(e))]
                                                + [m["message"] for m in missing]))
        return error_response(422, e.code, translate(str(e)),
                              {m.name: translate(m.message) for m in e.missing},
                              missing=missing)

    @app.errorhandler(DefinitionError)
    def _definition(e: DefinitionError):
        problems = [f"{p.file}: {p.path}: {translate(p.message)}" for p in e.problems]
        if not _is_api():
            return _page(422, "invalid_metadata", "; ".join(problems))
        return error_response(422, "invalid_metadata", _("The metadata is not valid."),
                              problems=problems)

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError):
        return _page_or_json(400, "csrf_failed",
                             _("The form has expired. Go back, reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        return _page_or_json(e.code or 500, code, e.description or e.name)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error")
        return _page_or_json(500, "internal_error",
                             _("Something went wrong on our side. Please try again."))


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _page_or_json(status: int, code: str, message: str):
    """The API answers JSON; pages answer a page."""
    if _is_api():
        return error_response(status, code, message)
    return render_template("error.html", status=status, code=code, message=message), status


def _page(status: int, code: str, detail: str, note: str | None = None):
    """The error page for a refusal the page can word: what was wrong, and a way back."""
    return render_template("error.html", status=status, code=code, message=detail,
                           detail=detail, note=note, back=_back()), status


def _back() -> str | None:
    """Where the user came from: the form posted, or this page without its query."""
    if request.method in ("GET", "HEAD"):
        return request.path if request.query_string else None
    came_from = urlsplit(request.referrer or "")
    if came_from.netloc and came_from.netloc != request.host:
        return None
    path = came_from.path + (f"?{came_from.query}" if came_from.query else "")
    return local_target(path, "") or None


def _field_label(name: str) -> str:
    """A parameter as the user knows it: the field's label on an object's page."""
    object_name = (request.view_args or {}).get("object_name")
    try:
        obj = registry().objects.get(object_name) if isinstance(object_name, str) else None
    except Exception:  # noqa: BLE001 - an error page never fails on a missing registry
        obj = None
    field = obj.field(name) if obj is not None else None
    return label(field.label) if field is not None else name
