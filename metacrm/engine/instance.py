"""Operations on a whole instance: initialise it, install templates (their objects, flows
and the roles the flows name)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from metacrm.engine import upgrades
from metacrm.engine.access import roles
from metacrm.engine.schema import changes, metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import meta_state, sys_role
from metacrm.metadata.templates import load_paths

__all__ = ["ensure_system_tables", "install"]


def installed_object_names(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(metastore.load_registry(session).objects)


def _installed(engine: Engine) -> tuple[Registry, set[str]]:
    """The installed metadata and the roles that exist, which new files may name."""
    with Session(engine) as session:
        return metastore.load_registry(session), set(session.execute(
            select(sys_role.c.name)).scalars())


def install(engine: Engine, paths: Iterable[Path | str], actor: str = "system",
            signal: VersionSignal | None = None) -> int:
    """Validate template folders, store them as a new metadata version, apply the schema.

    Metadata and schema change in one transaction: a refused schema change leaves the
    previous metadata in place.
    """
    ensure_system_tables(engine)
    installed, known_roles = _installed(engine)
    templates = load_paths(paths, known_objects=set(installed.objects), known_roles=known_roles,
                           installed=installed.objects, installed_settings=installed.settings)

    def write(session: Session) -> int:
        version = metastore.install_template(session, templates, actor)
        for kind, _, content in metastore.template_documents(templates):
            if kind == "role":  # a role the flows name exists; its grants are the admin's
                roles.ensure_role(session, content["name"], content["label"])
        return version

    return changes.metadata_change(engine, write, signal)


def ensure_system_tables(engine: Engine) -> None:
    """The system tables, the instance's identity, the top department and built-in roles.

    A new database gets the tables by running every migration; an existing one must
    already be at the head revision (``upgrades.SystemSchemaOutdated`` otherwise, which
    tells the admin to run ``metacrm upgrade``).
    """
    if upgrades.check(engine).empty:
        upgrades.upgrade(engine)
    with engine.begin() as conn:
        if conn.execute(select(meta_state.c.id)).first() is None:
            conn.execute(insert(meta_state).values(id=1, version=0, schema_version=0,
                                                   instance_id=uuid.uuid4().hex))
        roles.ensure_defaults(Session(bind=conn))
