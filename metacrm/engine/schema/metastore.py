"""Metadata kept in the database as versioned documents, in two layers.

``base`` rows are what a template ships; ``overlay`` rows are local changes on top.
Every change bumps one counter (``meta_state.version``) and records a snapshot, so each
process notices a new version with one cheap read and can rebuild its registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.db import affected
from metacrm.engine.schema.registry import Registry, build_registry
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import (
    meta_document,
    meta_state,
    meta_template,
    meta_version,
)
from metacrm.metadata.loader import TemplateSet
from metacrm.metadata.overlay import merge

__all__ = ["RegistryCache", "bump_version", "effective_by_key", "install_template", "instance_id",
           "load_registry", "merge_overlay", "read_version", "registry_at",
           "template_documents", "upsert_document"]



def template_documents(templates: TemplateSet) -> Iterable[tuple[str, str, dict]]:
    """(kind, doc_key, content) for each storable document of a loaded template set."""
    for doc in templates.documents:
        if doc.kind == "object":
            yield "object", doc.content.get("key", doc.content["object"]), doc.content
        elif doc.kind == "picklists":
            for picklist in doc.content["picklists"]:
                yield "picklist", picklist.get("key", picklist["name"]), picklist
        elif doc.kind == "template":
            yield "template", doc.content["template"], doc.content
        elif doc.kind in ("stage_process", "approval_flow"):
            yield doc.kind, doc.content.get("key", doc.content[doc.kind]), doc.content
        elif doc.kind == "roles":
            for role in doc.content["roles"]:
                yield "role", role["name"], role
        elif doc.kind == "settings":
            for setting in doc.content["settings"]:
                yield "setting", setting.get("key", setting["name"]), setting


def upsert_document(session: Session, kind: str, key: str, layer: str, content: dict,
            template: str | None) -> None:
    where = ((meta_document.c.kind == kind) & (meta_document.c.doc_key == key)
             & (meta_document.c.layer == layer))
    values = {"content": content, "updated_at": clock.now(), "template": template}
    if affected(session.execute(update(meta_document).where(where).values(**values))) == 0:
        session.execute(insert(meta_document).values(kind=kind, doc_key=key, layer=layer,
                                                     **values))


def install_template(session: Session, templates: TemplateSet, actor: str) -> int:
    """Write a template's documents as the base layer; local overlays are kept."""
    manifest = templates.manifest
    name = manifest.content["template"] if manifest else "local"
    shipped = list(template_documents(templates))
    for kind, key, content in shipped:
        if kind == "object":
            content = _keep_dropped_fields(session, key, content)
        upsert_document(session, kind, key, "base", content, name)
    _archive_dropped_objects(session, name, {key for kind, key, _ in shipped if kind == "object"})
    if manifest:
        values = {"version": manifest.content["version"], "installed_at": clock.now(),
                  "manifest": manifest.content}
        if affected(session.execute(update(meta_template).where(meta_template.c.name == name)
                                    .values(**values))) == 0:
            session.execute(insert(meta_template).values(name=name, **values))
    version = manifest.content["version"] if manifest else "-"
    return bump_version(session, actor, f"install template {name} {version}")


def _keep_dropped_fields(session: Session, key: str, content: dict) -> dict:
    """A field the new version no longer ships stays, archived: hidden, its data kept."""
    previous = session.execute(select(meta_document.c.content).where(
        meta_document.c.kind == "object", meta_document.c.doc_key == key,
        meta_document.c.layer == "base")).scalar()
    if not previous:
        return content
    shipped = {f.get("key", f["name"]) for f in content["fields"]}
    dropped = [{**f, "archived": True} for f in previous["fields"]
               if f.get("key", f["name"]) not in shipped]
    return {**content, "fields": [*content["fields"], *dropped]} if dropped else content


def _archive_dropped_objects(session: Session, template: str, kept: set[str]) -> None:
    """An object a template no longer ships is archived: hidden, its table and data kept."""
    rows = session.execute(
        select(meta_document.c.doc_key, meta_document.c.content).where(
            meta_document.c.kind == "object", meta_document.c.layer == "base",
            meta_document.c.template == template)).all()
    for key, content in rows:
        if key not in kept and not content.get("archived"):
            upsert_document(session, "object", key, "base", {**content, "archived": True}, template)


def merge_overlay(session: Session, kind: str, key: str, change: dict) -> None:
    """Fold a local change into the document's overlay layer (the base stays as shipped)."""
    current = session.execute(select(meta_document.c.content, meta_document.c.template).where(
        meta_document.c.kind == kind, meta_document.c.doc_key == key,
        meta_document.c.layer == "overlay")).first()
    content = merge(current.content, change) if current else change
    upsert_document(session, kind, key, "overlay", content, current.template if current else None)


def bump_version(session: Session, actor: str, summary: str) -> int:
    session.execute(update(meta_state).where(meta_state.c.id == 1)
                    .values(version=meta_state.c.version + 1))
    version = session.execute(select(meta_state.c.version).where(meta_state.c.id == 1)).scalar_one()
    session.execute(insert(meta_version).values(version=version, created_at=clock.now(), actor=actor,
                                                summary=summary, snapshot=_snapshot(session)))
    return version


def _snapshot(session: Session) -> list[dict]:
    rows = session.execute(select(meta_document.c.kind, meta_document.c.doc_key,
                                  meta_document.c.layer, meta_document.c.template,
                                  meta_document.c.content).order_by(meta_document.c.id))
    return [dict(r._mapping) for r in rows]


def effective_by_key(rows: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """Merge each document's overlay onto its base: ``(kind, doc_key) -> content``."""
    layers: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        layers.setdefault((row["kind"], row["doc_key"]), {})[row["layer"]] = row["content"]
    out = {}
    for ident, found in layers.items():
        base = found.get("base", {})
        content = merge(base, found["overlay"]) if "overlay" in found else base
        if content:
            out[ident] = content
    return out


def effective_documents(rows: Iterable[dict]) -> list[tuple[str, dict]]:
    return [(kind, content) for (kind, _), content in effective_by_key(rows).items()]


def read_version(session: Session) -> tuple[int, int]:
    row = session.execute(select(meta_state.c.version, meta_state.c.schema_version)
                          .where(meta_state.c.id == 1)).one()
    return row.version, row.schema_version


def instance_id(session: Session) -> str:
    return session.execute(select(meta_state.c.instance_id).where(meta_state.c.id == 1)
                           ).scalar_one()


def registry_at(session: Session, version: int) -> Registry | None:
    """The registry as it was at ``version`` (None before the first version)."""
    if version <= 0:
        return None
    snapshot = session.execute(select(meta_version.c.snapshot)
                               .where(meta_version.c.version == version)).scalar_one()
    return build_registry(version, effective_documents(snapshot))


def current_documents(session: Session) -> dict[tuple[str, str], dict]:
    """The effective documents (each overlay merged onto its base), as a change reads them."""
    rows = session.execute(select(meta_document.c.kind, meta_document.c.doc_key,
                                  meta_document.c.layer, meta_document.c.content))
    return effective_by_key(dict(r._mapping) for r in rows)


def load_registry(session: Session) -> Registry:
    version, _ = read_version(session)
    return build_registry(version, [(kind, content) for (kind, _), content
                                    in current_documents(session).items()])


class RegistryCache:
    """Per-process registry, reloaded when the version counter moves.

    With a VersionSignal (Redis) the version is read from Redis on every call. Without
    one, the database counter is read at most once per ``poll_seconds``. Either way a
    warm request path issues no metadata query; ``invalidate`` forces a fresh look.
    """

    def __init__(self, engine: Engine, poll_seconds: float = 1.0,
                 signal: VersionSignal | None = None):
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.signal = signal
        self._registry: Registry | None = None
        self._instance_id = ""
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._checked_at = 0.0

    def get(self) -> Registry:
        registry = self._registry
        if registry is not None and self.signal is not None:
            published = self.signal.read(self._instance_id)
            if published is not None and published <= registry.version:
                return registry
        elif registry is not None and time.monotonic() - self._checked_at < self.poll_seconds:
            return registry
        with self._lock:
            with Session(self.engine) as session:
                version, _ = read_version(session)
                if self._registry is None or self._registry.version != version:
                    self._registry = load_registry(session)
                    self._instance_id = instance_id(session)
            self._checked_at = time.monotonic()
            if self.signal is not None:
                self.signal.publish(self._instance_id, version)
            return self._registry
