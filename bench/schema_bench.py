"""Benchmark 3: adding a nullable field to a big table must not rewrite it.

The engine path is the whole admin action: install a copy of the sample template with one
more opportunity field (load + validate, store a new metadata version, plan, apply). The
baseline is the bare ``ALTER TABLE ... ADD COLUMN``. A rewrite would show as a new
relfilenode (PostgreSQL) or a new root page (SQLite).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from sqlalchemy import text

from bench.common import SAMPLE, Instance, median, ms, timed
from bench.report import Recorder

REPEAT = 3
TABLE = "o_opportunity"


def template_with_fields(dest: Path, names: list[str]) -> Path:
    """A copy of the sample template whose opportunity has extra text fields."""
    shutil.copytree(SAMPLE, dest)
    path = dest / "opportunity.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["fields"].extend({"name": n, "type": "text", "label": {"en": n, "zh": n}}
                         for n in names)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def storage_id(inst: Instance) -> int:
    """What changes when the table is rewritten."""
    sql = ("SELECT relfilenode FROM pg_class WHERE relname = :t" if inst.dialect == "postgresql"
           else "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = :t")
    with inst.engine.connect() as conn:
        return conn.execute(text(sql), {"t": TABLE}).scalar_one()


def table_bytes(inst: Instance) -> int:
    sql = ("SELECT pg_relation_size(:t)" if inst.dialect == "postgresql"
           else "SELECT sum(pgsize) FROM dbstat WHERE name = :t")
    with inst.engine.connect() as conn:
        return conn.execute(text(sql), {"t": TABLE}).scalar_one()


def raw_add_column(inst: Instance, name: str) -> None:
    with inst.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN {name} VARCHAR"))


def run(inst: Instance, rec: Recorder, workdir: Path) -> float:
    """Records the add-field measurements; returns the engine's median in seconds."""
    from metacrm.engine import instance

    before_id, before_bytes = storage_id(inst), table_bytes(inst)
    raw, engine = [], []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i in range(1, REPEAT + 1):
            raw.append(timed(lambda i=i: raw_add_column(inst, f"raw_note_{i}")))
            folder = template_with_fields(Path(tmp) / f"v{i}",
                                          [f"extra_note_{n}" for n in range(1, i + 1)])
            engine.append(timed(lambda folder=folder: instance.install(inst.engine, [folder])))
    after_id, after_bytes = storage_id(inst), table_bytes(inst)
    with inst.engine.connect() as conn:
        columns = {c for c in conn.execute(text(f"SELECT * FROM {TABLE} LIMIT 0")).keys()}
    raw_s, engine_s = median(raw), median(engine)
    rec.add("schema", "raw ALTER TABLE ADD COLUMN", ms(raw_s), "ms")
    rec.add("schema", "engine add field (install template)", ms(engine_s), "ms", key=True)
    rec.add("schema", "engine - raw ALTER (limit 200 ms)", ms(engine_s - raw_s), "ms", "<= 200")
    rec.check("schema", "engine added the columns",
              {f"extra_note_{n}" for n in range(1, REPEAT + 1)} <= columns)
    what = "relfilenode" if inst.dialect == "postgresql" else "root page"
    rec.check("schema", f"table not rewritten ({what} unchanged)", before_id == after_id,
              note=f"{before_id} -> {after_id}")
    rec.add("schema", "table size growth over the six changes",
            (after_bytes - before_bytes) / 1024, "KiB", note=f"of {before_bytes / 2**20:,.0f} MiB")
    return engine_s
