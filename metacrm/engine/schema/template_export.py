"""The current customisations written out as a template folder: what a consultant ships.

The files are the effective documents (template as shipped, merged with the local
changes), one YAML file per object, one per stage process and approval flow
(``stage_process_<name>.yaml``, ``approval_flow_<name>.yaml``), the shared picklists and
the roles the flows name each in one file, and the manifest, in the layout ``metacrm
validate`` and ``metacrm template install`` read. The output is
deterministic, so export → install into a fresh instance → export gives the same files.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from metacrm.engine.schema import metastore
from metacrm.engine.systables import meta_document, sys_role
from metacrm.metadata.flows import DEFAULT_ROLE, SUPER_ROLE
from metacrm.metadata.loader import iter_files

__all__ = ["ExportRefused", "export_files", "export_template"]

FLOW_KINDS = ("stage_process", "approval_flow")
DEFAULT_MANIFEST = {"template": "local", "version": "1.0",
                    "label": {"en": "Local customisations", "zh": "本地定制"}}


def _dump(content: dict) -> str:
    return yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=100,
                          default_flow_style=None)


def export_files(engine: Engine) -> dict[str, str]:
    """Relative file name -> YAML text, for every current document."""
    with Session(engine) as session:
        rows = [dict(r._mapping) for r in session.execute(
            select(meta_document.c.kind, meta_document.c.doc_key, meta_document.c.layer,
                   meta_document.c.content))]
        labels = {r.name: r.label for r in session.execute(select(sys_role.c.name,
                                                                  sys_role.c.label))}
    documents = metastore.effective_by_key(rows)
    by_kind: dict[str, list[dict]] = {}
    for (kind, _), content in sorted(documents.items()):
        by_kind.setdefault(kind, []).append(content)
    manifests = by_kind.get("template") or [DEFAULT_MANIFEST]
    manifest = dict(manifests[0])
    groups = [g for m in manifests for g in m.get("groups", [])]
    if groups:  # several installed templates ship as one: their navigation groups merged
        merged: dict[str, dict] = {}
        for group in groups:
            merged.setdefault(group["name"], group)
        manifest["groups"] = list(merged.values())
    files = {"template.yaml": _dump(manifest)}
    picklists = sorted(by_kind.get("picklist", []), key=lambda p: p["name"])
    if picklists:
        files["picklists.yaml"] = _dump({"picklists": picklists})
    for content in by_kind.get("object", []):
        files[f"{content['object']}.yaml"] = _dump(content)
    for kind in FLOW_KINDS:
        for content in by_kind.get(kind, []):
            files[f"{kind}_{content[kind]}.yaml"] = _dump(content)
    settings = sorted(by_kind.get("setting", []), key=lambda s: s["name"])
    if settings:
        files["settings.yaml"] = _dump({"settings": settings})
    roles = _roles(by_kind, labels)
    if roles:
        files["roles.yaml"] = _dump({"roles": roles})
    return files


def _roles(by_kind: dict[str, list[dict]], labels: dict[str, dict]) -> list[dict]:
    """The role documents, and the roles the flows name that were created by hand: without
    them the folder would not validate on its own."""
    found = {r["name"]: r for r in by_kind.get("role", [])}
    for flow in by_kind.get("approval_flow", []):
        for step in flow["steps"]:
            name = step["approvers"].get("role")
            if name and name not in found and name not in (SUPER_ROLE, DEFAULT_ROLE) \
                    and name in labels:
                found[name] = {"name": name, "label": {"en": labels[name]["en"],
                                                       "zh": labels[name]["zh"]}}
    return [found[name] for name in sorted(found)]


class ExportRefused(Exception):
    pass


def export_template(engine: Engine, directory: Path | str) -> list[Path]:
    """Write the files into ``directory`` (created if needed); returns their paths. A folder
    holding other definition files is refused: they would be read as part of the template."""
    folder = Path(directory)
    files = export_files(engine)
    others = sorted(p.name for p in iter_files([folder]) if p.relative_to(folder).as_posix()
                    not in files) if folder.exists() else []
    if others:
        raise ExportRefused(f"{folder} already holds other definition files "
                            f"({', '.join(others[:5])}); choose an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
