"""What every page handler needs: the signed-in actor, one unit of work per action, and
the detail page's panels as the app factory registered them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask_login import current_user

from metacrm.engine.actor import Actor
from metacrm.metadata.model import ObjectDef
from metacrm.ui.runtime import db, runtime

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


def detail_panels() -> dict[str, Panel]:
    """Name → the function giving a panel's context on a record's page (None: no panel)."""
    return runtime().panels
