"""What a request carries, checked before any view reads it.

Some input is malformed for every view alike: text that no database stores (a NUL, a
lone UTF-16 surrogate), whole numbers beyond the 64-bit columns every id and integer
lives in, JSON nested deeper than any request needs. One hook refuses it for the whole
app, naming the parameter or the path in the body, so no view, engine call or database
driver meets it and fails with a server error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from metacrm.metadata.fieldtypes import storable
from metacrm.metadata.messages import Message

MAX_INT = 2**63 - 1  # the largest value of a 64-bit (BIGINT) column
MIN_INT = -(2**63)
MAX_JSON_DEPTH = 32
_WHOLE = re.compile(r"[0-9]{1,19}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class InputRefused(Exception):
    """Input that no view can use: ``field`` names the parameter or the body's path."""

    def __init__(self, field: str, problem: Message, status: int = 422):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem, self.status = field, problem, status

    @property
    def code(self) -> str:
        return "validation_failed" if self.status == 422 else "bad_request"


class IdConverter(IntegerConverter):
    """``<int:...>`` in a route: an id fits a 64-bit column; a larger one is not found
    (a 404 whatever the method, where a skipped rule could answer 405)."""

    def to_python(self, value: str) -> Any:
        number = super().to_python(value)
        if number > MAX_INT:
            raise NotFound()
        return number


def whole_number(raw: str | None) -> int | None:
    """A non-negative whole number that fits a 64-bit column, or None (ASCII digits only:
    ``str.isdigit`` also accepts '²', which ``int`` refuses)."""
    if raw is None or not _WHOLE.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_INT else None


def query_int(name: str, default: int | None) -> int | None:
    """A whole-number query parameter; anything else is refused naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputRefused(name, Message("must be a whole number"), 400) from None
    if not MIN_INT <= value <= MAX_INT:
        raise InputRefused(name, Message("is out of range"), 400)
    return value


def parse_json(text: str | bytes, name: str) -> Any:
    """JSON from a parameter, checked as a body is; ``ValueError`` if it is not JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputRefused(name, _too_deep(), 400) from None
    check_json(value, name)
    return value


def check_json(value: Any, where: str = "") -> None:
    """Refuses the first value no view can use, naming its path (``ids[3]``, ``a.b``)."""
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:  # a loop, not recursion: depth is what is being checked
        item, path, depth = pending.pop()
        if isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                raise InputRefused(path or "body", _too_deep(), 400)
            for key, child in item.items():
                child_path = f"{path}.{_shown(key)}" if path else _shown(key)
                if _bad_text(key):
                    raise InputRefused(child_path, _text_problem(key), 400)
                pending.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_JSON_DEPTH:
                raise InputRefused(path or "body", _too_deep(), 400)
            pending.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            if _bad_text(item):
                raise InputRefused(path or "body", _text_problem(item))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise InputRefused(path or "body", Message("is out of range"))
        elif isinstance(item, float) and not math.isfinite(item):
            raise InputRefused(path or "body", Message("must be a finite number"))


def _too_deep() -> Message:
    return Message("is nested more than %(depth)d levels deep", depth=MAX_JSON_DEPTH)


def _bad_text(text: str) -> bool:
    return not storable(text)


def _text_problem(text: str) -> Message:
    if "\x00" in text:
        return Message("must not contain NUL characters")
    return Message("is not valid Unicode text (it holds a lone surrogate)")


def _shown(key: str) -> str:
    """A body key as an error may quote it: valid UTF-8, printable, short."""
    return "".join(c if c.isprintable() and not _SURROGATE.match(c) else
                   c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in key[:63])


def _check_request() -> None:
    sent = request.method not in ("GET", "HEAD", "OPTIONS")
    for source in (request.args, request.form) if sent else (request.args,):
        for key, values in source.lists():
            key = key or ""  # a multipart part may come without a name
            for text in (key, *values):
                if _bad_text(text):
                    raise InputRefused(_shown(key), _text_problem(text), 400)
    for key, upload in request.files.items(multi=True) if sent else ():
        key = key or ""
        for text in (upload.filename or "", upload.mimetype or ""):
            if _bad_text(text):
                raise InputRefused(_shown(key), _text_problem(text), 400)
    if sent and request.is_json:
        try:
            body = request.get_json(silent=True)  # cached: the view reads the same value
        except RecursionError:
            raise InputRefused("body", _too_deep(), 400) from None
        check_json(body)


def install(app: Flask) -> None:
    """Before any route is added: the bounded id converter; the check, first of all hooks."""
    app.url_map.converters["int"] = IdConverter
    app.before_request_funcs.setdefault(None, []).insert(0, _check_request)
