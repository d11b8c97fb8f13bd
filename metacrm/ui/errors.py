"""Domain exceptions → JSON errors: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from metacrm.engine.errors import (
    ApprovalConflict,
    BadQuery,
    ObjectNotFound,
    PermissionDenied,
    RecordLocked,
    RecordNotFound,
    StageRefused,
    StaleVersion,
    ValidationFailed,
)
from metacrm.metadata.problems import DefinitionError
from metacrm.ui.i18n import translate
from metacrm.ui.input import InputRefused

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
        body, status = error_response(e.status, e.code, e.message, e.fields)
        return body, status, e.headers

    @app.errorhandler(ValidationFailed)
    def _invalid(e: ValidationFailed):
        extra = {"row": e.row} if e.row is not None else {}
        if e.hook:
            extra["hook"] = e.hook
        return error_response(422, e.code, str(e), e.fields, **extra)

    @app.errorhandler(InputRefused)
    def _refused_input(e: InputRefused):
        problem = translate(e.problem)
        message = f"{e.field}: {problem}"
        if request.path.startswith("/api/"):
            return error_response(e.status, e.code, message, {e.field: problem})
        return render_template("error.html", status=e.status, code=e.code, message=message,
                               detail=message), e.status

    @app.errorhandler(BadQuery)
    def _bad_query(e: BadQuery):
        return error_response(400, e.code, str(e), {e.field: str(e)} if e.field else None)

    @app.errorhandler(RecordNotFound)
    @app.errorhandler(ObjectNotFound)
    def _not_found(e):
        return _page_or_json(404, "not_found", str(e))

    @app.errorhandler(PermissionDenied)
    def _forbidden(e):
        return _page_or_json(403, e.code, translate(e.args[0]) if e.args else "not allowed")

    @app.errorhandler(StaleVersion)
    def _stale(e: StaleVersion):
        return error_response(409, e.code, str(e), current_version=e.current_version)

    @app.errorhandler(RecordLocked)
    @app.errorhandler(ApprovalConflict)
    def _conflict(e):
        return _page_or_json(409, e.code, translate(e.args[0]) if e.args else e.code)

    @app.errorhandler(StageRefused)
    def _stage_refused(e: StageRefused):
        missing = [{"kind": m.kind, "name": m.name, "stage": m.stage,
                    "message": translate(m.message)} for m in e.missing]
        return error_response(422, e.code, translate(str(e)),
                              {m.name: translate(m.message) for m in e.missing},
                              missing=missing)

    @app.errorhandler(DefinitionError)
    def _definition(e: DefinitionError):
        return error_response(422, "invalid_metadata", "the metadata is not valid",
                              problems=[f"{p.file}: {p.path}: {translate(p.message)}"
                                        for p in e.problems])

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError):
        return _page_or_json(400, "csrf_failed", "the form has expired; reload and try again")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        return _page_or_json(e.code or 500, code, e.description or e.name)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error")
        return _page_or_json(500, "internal_error", "something went wrong on our side")


def _page_or_json(status: int, code: str, message: str):
    """The API answers JSON; pages answer a page."""
    if request.path.startswith("/api/"):
        return error_response(status, code, message)
    return render_template("error.html", status=status, code=code, message=message), status
