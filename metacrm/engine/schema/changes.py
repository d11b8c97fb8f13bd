"""Metadata changes with their schema: written and applied in one transaction.

A refused schema change leaves the previous metadata in place; other processes hear of a
new version through the signal.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from metacrm.engine.schema import metastore, schema_sync
from metacrm.engine.schema.registry import Registry
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import meta_state

__all__ = ["apply_schema", "change_object", "metadata_change", "plan_schema"]


def change_object(engine: Engine, key: str, change: dict, actor: str, summary: str,
                  signal: VersionSignal | None = None) -> int:
    """Apply a local change to one object as a new version, with its schema, atomically."""
    def write(session: Session) -> int:
        metastore.merge_overlay(session, "object", key, change)
        return metastore.bump_version(session, actor, summary)

    return metadata_change(engine, write, signal)


def metadata_change(engine: Engine, write: Callable[[Session], int],
                     signal: VersionSignal | None) -> int:
    """Write metadata (returning the new version) and apply its schema in one transaction,
    then tell the other processes."""
    with engine.begin() as conn:
        session = Session(bind=conn)
        version = write(session)
        session.flush()
        _apply(conn, session)
        database = metastore.instance_id(session)
    if signal is not None:
        signal.publish(database, version)
    return version


def plan_schema(engine: Engine) -> schema_sync.Plan:
    with engine.connect() as conn:
        session = Session(bind=conn)
        old, new = _registries(session)
        return schema_sync.plan(conn, old, new)


def _registries(session: Session) -> tuple[Registry | None, Registry]:
    _, schema_version = metastore.read_version(session)
    return metastore.registry_at(session, schema_version), metastore.load_registry(session)


def apply_schema(engine: Engine) -> schema_sync.Plan:
    """Plan and apply in one transaction; a refused change leaves everything as it was."""
    with engine.begin() as conn:
        return _apply(conn, Session(bind=conn))


def _apply(conn, session: Session) -> schema_sync.Plan:
    old, new = _registries(session)
    planned = schema_sync.plan(conn, old, new)
    schema_sync.apply(conn, planned, new)
    conn.execute(update(meta_state).where(meta_state.c.id == 1)
                 .values(schema_version=new.version))
    return planned
