"""The admin pages' and admin API's one way to change metadata: through the customisations
engine, in a transaction of its own, then seen by every process."""

from __future__ import annotations

from typing import Any

from flask import g

from metacrm.engine import customise
from metacrm.engine.errors import SchemaChangeRefused
from metacrm.engine.schema import schema_sync
from metacrm.metadata.edits import EditRefused
from metacrm.metadata.problems import DefinitionError
from metacrm.ui.i18n import translate
from metacrm.ui.runtime import db, runtime

# What a refused change can raise; each carries the parts of the request it concerns.
REFUSALS = (EditRefused, DefinitionError, SchemaChangeRefused)


def apply(actor_name: str, summary: str, edit: customise.Edit, *,
          options: schema_sync.PlanOptions | None = None,
          preview: bool = False) -> customise.Outcome:
    """Run one metadata change (or preview it). The request's session lets go of the
    database first (SQLite holds one writer); afterwards this request and every other
    process read the new version."""
    db().commit()
    cache = runtime().registries
    outcome = customise.change(runtime().engine, actor_name, summary, edit,
                               options=options, preview=preview, signal=cache.signal)
    if not preview:
        cache.invalidate()
        g.pop("registry", None)
    return outcome


def rollback(actor_name: str, version: int, *, preview: bool = False) -> customise.Outcome:
    db().commit()
    cache = runtime().registries
    outcome = customise.rollback(runtime().engine, actor_name, version,
                                 preview=preview, signal=cache.signal)
    if not preview:
        cache.invalidate()
        g.pop("registry", None)
    return outcome


def problems(exc: Exception) -> list[dict[str, Any]]:
    """A refusal as a list of {path, message} (and, for data in the way, the records)."""
    if isinstance(exc, EditRefused):
        return [{"path": exc.path, "message": translate(exc.message)}]
    if isinstance(exc, DefinitionError):
        return [{"path": p.path, "message": translate(p.message), "document": p.file}
                for p in exc.problems]
    if isinstance(exc, SchemaChangeRefused):
        return [{"path": f"{r['object']}.{r['field']}", **r, "message": translate(r["reason"]),
                 "reason": translate(r["reason"])}
                for r in customise.refused_summary(exc)]
    raise TypeError(exc)
