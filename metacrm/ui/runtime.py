"""What a running app holds: the engine, the per-process registry and settings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, g, request
from flask_login import UserMixin
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine.actor import Actor
from metacrm.engine.db import writer
from metacrm.engine.schema.metastore import RegistryCache
from metacrm.engine.schema.registry import Registry


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    registries: RegistryCache
    panels: dict[str, Any] = field(default_factory=dict)  # the record page's extra panels


class SessionUser(UserMixin):
    """flask-login's view of an actor."""

    def __init__(self, actor: Actor):
        self.actor = actor
        self.id = str(actor.user_id)


def runtime() -> Runtime:
    return current_app.extensions["metacrm"]


def registry() -> Registry:
    if "registry" not in g:  # one registry for the whole request, even if a new one lands
        g.registry = runtime().registries.get()
    return g.registry


def db() -> Session:
    """The request's session; requests that may write take SQLite's write lock at once."""
    if "db" not in g:
        engine = runtime().engine
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            engine = writer(engine)
        g.db = Session(engine, expire_on_commit=False)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def streamed(chunks: Iterable[Any], **kwargs: Any) -> Response:
    """A response streamed after the view returns, reading through the request's session.

    The request's teardown runs before the first chunk is sent, so the session is taken
    out of the request and closed when the server closes the response: after the last
    chunk, on an error, or when the client goes away (even before the first chunk).
    Reading on after the teardown would otherwise check out a connection nobody returns.
    """
    session = g.pop("db", None)
    if session is None:
        return Response(chunks, **kwargs)
    response = Response(_closing(chunks, session), **kwargs)
    response.call_on_close(session.close)
    return response


def _closing(chunks: Iterable[Any], session: Session) -> Iterator[Any]:
    try:
        yield from chunks
    finally:  # the last chunk is sent: done, whether or not the server closes us
        session.close()
