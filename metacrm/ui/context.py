"""What every page handler needs: the signed-in actor, what they may do and see on an
object (the buttons and fields a page offers; the server checks again), 404s, one unit
of work per action, and the detail page's panels as the app factory registered them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import abort
from flask_login import current_user

from metacrm.engine.access import permissions
from metacrm.engine.actor import Actor
from metacrm.engine.errors import ObjectNotFound
from metacrm.engine.reading import query
from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.runtime import db, registry, runtime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Panel = Callable[[ObjectDef, dict[str, Any]], Any]


def actor() -> Actor:
    """The signed-in user as the engine knows them."""
    return current_user.actor


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """The request's session as one transaction: committed when the block ends, rolled
    back on any error, which then goes on to the caller."""
    session = db()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def in_one_unit_of_work(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view whose writes are one transaction: committed when it answers, rolled back
    when it raises (the app's error handlers then answer)."""
    @functools.wraps(view)
    def run(*args: Any, **kwargs: Any) -> Any:
        with unit_of_work():
            return view(*args, **kwargs)

    return run


def detail_panels() -> dict[str, Panel]:
    """Name → the function giving a panel's context on a record's page (None: no panel)."""
    return runtime().panels


# -- what the user may do and see ------------------------------------------------------
def may(obj: ObjectDef) -> dict[str, bool]:
    """What the user's roles allow on the object: which buttons a page offers."""
    return {op: permissions.granted(db(), actor(), obj, op) for op in permissions.OPERATIONS}


def visible(obj: ObjectDef) -> dict[str, FieldDef]:
    """The fields the user may see (hidden ones are absent everywhere)."""
    return permissions.visible_fields(db(), actor(), obj, registry())


def on_forms(obj: ObjectDef) -> dict[str, FieldDef]:
    """The fields forms and detail pages may show: the visible ones and the line items
    (which have no column, so lists and filters never name them)."""
    hidden = permissions.hidden_fields(db(), actor(), obj, registry())
    return {**visible(obj), **{f.name: f for f in obj.line_fields if f.name not in hidden}}


def read_only(obj: ObjectDef) -> frozenset[str]:
    rules = permissions.field_access(db(), actor(), obj, registry())
    return frozenset(n for n, a in rules.items() if a == "read_only")


def engine_owned(obj: ObjectDef) -> frozenset[str]:
    """The fields no form writes: the stage and win-rate fields (a record moves along its
    stage path), what an approval's outcome sets, formulas, roll-ups and auto-numbers."""
    return frozenset(registry().owned_fields(obj.name))


def edit_locked(obj: ObjectDef) -> frozenset[str]:
    """What an edit form shows as text: read-only fields and the engine's own."""
    return read_only(obj) | engine_owned(obj)


def records_page(obj: ObjectDef, params: query.ListParams, **kw: Any) -> query.Page:
    """A page of records as the signed-in user may see them."""
    return query.list_records(db(), registry(), obj, params, actor=actor(), **kw)


def object_or_404(name: str) -> ObjectDef:
    try:
        return registry().object(name)
    except ObjectNotFound:
        abort(404)


def page_object_or_404(name: str) -> ObjectDef:
    """An object with pages of its own. Line items (a master-detail child) have none: they
    are listed, added, edited, exported and shared on their parent's pages."""
    obj = object_or_404(name)
    if obj.master_field is not None:
        abort(404)
    return obj


def fetch_or_404(obj: ObjectDef, record_id: int, **params: Any) -> dict[str, Any]:
    """One record with its lookups' titles, through the same compiler as lists."""
    page = records_page(obj, query.ListParams(
        filter=[["id", "eq", record_id]], lookup_titles=True, count="none", **params))
    if not page.items:
        abort(404)
    return page.items[0]


def record_may(obj: ObjectDef, record_id: int, operations: tuple[str, ...]) -> dict[str, bool]:
    return permissions.record_operations(db(), actor(), obj, registry().table(obj), record_id,
                                         operations)
