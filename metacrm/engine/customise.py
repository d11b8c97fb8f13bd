"""Admin changes to the metadata of a running instance, live.

One path for every change, from the admin pages, the admin API and rollbacks: read the
effective documents, apply a pure edit (``metadata.edits``), validate the whole result as
``metacrm validate`` would, store what differs from the template as the overlay, write a
new version, and change the schema, all in one transaction. A refused schema change (a
required field over blanks, a type change over values) rolls everything back and reports
the records in the way; ``preview`` reports the same without keeping anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from metacrm.engine.db import writer
from metacrm.engine.errors import SchemaChangeRefused
from metacrm.engine.schema import metastore, schema_sync
from metacrm.engine.schema.registry import Registry
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import meta_document, meta_state, meta_version
from metacrm.engine.writing import rollups
from metacrm.metadata.checks import check_template_set
from metacrm.metadata.diff import DiffLine, diff_documents
from metacrm.metadata.edits import Draft, roll_back
from metacrm.metadata.loader import DOCUMENT_KINDS, schema_problem, schema_validator
from metacrm.metadata.overlay import make_overlay
from metacrm.metadata.problems import DefinitionError, Problem

__all__ = ["Edit", "Outcome", "VersionInfo", "change", "history", "refused_summary", "rollback",
           "values_held", "version_diff"]

Edit = Callable[[Draft], None]
DDL_LOCK_TIMEOUT = "3s"
DDL_ATTEMPTS = 3
LOCK_NOT_AVAILABLE = "55P03"


@dataclass
class Outcome:
    """What a change did (or, previewed, would do): its version, schema plan and diff."""

    version: int | None
    plan: schema_sync.Plan
    diff: list[DiffLine] = field(default_factory=list)


class _Preview(Exception):
    def __init__(self, outcome: Outcome):
        self.outcome = outcome


def change(engine: Engine, actor: str, summary: str, edit: Edit, *,
           options: schema_sync.PlanOptions | None = None, preview: bool = False,
           signal: VersionSignal | None = None) -> Outcome:
    """Apply ``edit`` as a new metadata version with its schema change, atomically.

    Raises ``EditRefused`` or ``DefinitionError`` (bad metadata, naming the path) or
    ``SchemaChangeRefused`` (the data is in the way, naming the records); in each case
    nothing is changed. With ``preview`` the outcome is computed, then rolled back.
    """
    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            return _change(engine, actor, summary, edit, options, preview, signal)
        except OperationalError as exc:  # a table stayed busy past the lock timeout
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE \
                    or attempt == DDL_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _change(engine: Engine, actor: str, summary: str, edit: Edit,
            options: schema_sync.PlanOptions | None, preview: bool,
            signal: VersionSignal | None) -> Outcome:
    try:
        with writer(engine).begin() as conn:
            session = Session(bind=conn)
            if conn.dialect.name == "postgresql":
                # Waiting long for a busy table would queue every writer behind the
                # change; give up quickly and try again instead.
                conn.execute(text("SELECT set_config('lock_timeout', :value, true)"),
                             {"value": DDL_LOCK_TIMEOUT})
            _lock(session)
            rows = _rows(session)
            before = metastore.effective_by_key(rows)
            draft = Draft.copy_of(before)
            edit(draft)
            validate(draft)
            diff = diff_documents(before, draft.documents)
            if not diff:
                return Outcome(None, schema_sync.Plan([]), [])
            _store(session, rows, draft)
            version = metastore.bump_version(session, actor, summary)
            session.flush()
            old, new = _registries(session)
            planned = schema_sync.plan(conn, old, new, options)
            if preview:
                raise _Preview(Outcome(version, planned, diff))
            schema_sync.apply(conn, planned, new)
            conn.execute(update(meta_state).where(meta_state.c.id == 1)
                         .values(schema_version=new.version))
            database = metastore.instance_id(session)
    except _Preview as shown:
        return shown.outcome
    _fill_new_computed(engine, planned, new)
    if signal is not None:
        signal.publish(database, version)
    return Outcome(version, planned, diff)


def _lock(session: Session) -> None:
    """Metadata changes queue one behind the other: a row lock on PostgreSQL, and on
    SQLite the write lock that ``writer`` takes at BEGIN."""
    session.execute(select(meta_state.c.version).where(meta_state.c.id == 1).with_for_update())


def _rows(session: Session) -> list[dict]:
    return [dict(r._mapping) for r in session.execute(
        select(meta_document.c.kind, meta_document.c.doc_key, meta_document.c.layer,
               meta_document.c.template, meta_document.c.content))]


def validate(draft: Draft) -> None:
    """The same checks as ``metacrm validate``: each document's JSON Schema, then the
    cross-references over the whole set."""
    templates = draft.as_template_set()
    problems: list[Problem] = []
    for doc in templates.documents:
        problems.extend(schema_problem(doc.source, error) for error in
                        schema_validator(DOCUMENT_KINDS[doc.kind]).iter_errors(doc.content))
    if not problems:
        problems = check_template_set(templates, known_objects=set(), known_roles=None)
    if problems:
        raise DefinitionError(problems)


def _store(session: Session, rows: list[dict], draft: Draft) -> None:
    """Each changed document's overlay becomes what differs from its base."""
    base = {(r["kind"], r["doc_key"]): r for r in rows if r["layer"] == "base"}
    overlays = {(r["kind"], r["doc_key"]): r for r in rows if r["layer"] == "overlay"}
    for ident, content in draft.documents.items():
        shipped = base.get(ident)
        overlay = make_overlay(shipped["content"], content) if shipped else content
        current = overlays.get(ident)
        if overlay == (current["content"] if current else None):
            continue
        if overlay is None:
            session.execute(delete(meta_document).where(
                (meta_document.c.kind == ident[0]) & (meta_document.c.doc_key == ident[1])
                & (meta_document.c.layer == "overlay")))
        else:
            metastore.upsert_document(session, ident[0], ident[1], "overlay", overlay,
                                      shipped["template"] if shipped else None)


def _registries(session: Session) -> tuple[Registry | None, Registry]:
    _, schema_version = metastore.read_version(session)
    return metastore.registry_at(session, schema_version), metastore.load_registry(session)


def values_held(session: Session, registry: Registry, object_name: str, field_name: str) -> int:
    """What purging a field deletes: its values in every record, the recycle bin's too."""
    obj = registry.objects[object_name]
    f = obj.all_fields[field_name]
    if not f.stored:
        return 0
    column = registry.table(obj).c[f.column]
    return session.execute(select(func.count(column))).scalar_one()


def business_type_in_use(session: Session, registry: Registry, object_name: str,
                         type_name: str) -> int:
    """What removing a business type would strand: its records, the recycle bin's too."""
    table = registry.table(object_name)
    return session.execute(select(func.count()).select_from(table)
                           .where(table.c.business_type == type_name)).scalar_one()


def _fill_new_computed(engine: Engine, planned: schema_sync.Plan, registry: Registry) -> None:
    """A formula or roll-up added to a table that has rows is computed for them at once."""
    added = [c for c in planned.changes
             if isinstance(c, schema_sync.AddColumn) and c.field.computed]
    for change_ in added:
        with writer(engine).begin() as conn:
            rollups.rebuild(conn, registry, registry.objects[change_.object], change_.field.name)


# -- versions -----------------------------------------------------------------------------
@dataclass
class VersionInfo:
    version: int
    created_at: object
    actor: str
    summary: str


def history(engine: Engine, limit: int = 50, before: int | None = None) -> list[VersionInfo]:
    """The newest versions first, ``limit`` at a time (``before``: older than this one)."""
    query = select(meta_version.c.version, meta_version.c.created_at, meta_version.c.actor,
                   meta_version.c.summary).order_by(meta_version.c.version.desc()).limit(limit)
    if before is not None:
        query = query.where(meta_version.c.version < before)
    with engine.connect() as conn:
        return [VersionInfo(*row) for row in conn.execute(query)]


def _snapshot_documents(session: Session, version: int) -> dict[tuple[str, str], dict]:
    if version <= 0:
        return {}
    snapshot = session.execute(select(meta_version.c.snapshot)
                               .where(meta_version.c.version == version)).scalar()
    if snapshot is None:
        raise LookupError(f"there is no version {version}")
    return metastore.effective_by_key(snapshot)


def version_diff(engine: Engine, version: int) -> list[DiffLine]:
    """What ``version`` changed from the one before it."""
    with Session(engine) as session:
        after = _snapshot_documents(session, version)
        return diff_documents(_snapshot_documents(session, version - 1), after)


def rollback(engine: Engine, actor: str, version: int, *, preview: bool = False,
             signal: VersionSignal | None = None) -> Outcome:
    """A new version equal to ``version``, except that objects and fields added since are
    archived, never dropped: a rollback loses no data."""
    with Session(engine) as session:
        target = Draft.copy_of(_snapshot_documents(session, version))
    return change(engine, actor, f"roll back to version {version}",
                  lambda draft: roll_back(draft, target), preview=preview, signal=signal)


def refused_summary(exc: SchemaChangeRefused) -> list[dict]:
    """The records in the way of a refused change, for the admin pages and the API."""
    return [{"object": c.object, "field": c.field_name, "reason": c.reason, "count": c.count,
             "sample": c.sample, "conversion": c.conversion} for c in exc.changes]
