"""Benchmark 2: creating customers through the records service.

``customer`` is used because it has the costly parts of a create: a unique name (one
lookup per batch), an auto-number code (one sequence upsert per batch), defaults, a
business type and the audit log. The baseline inserts the very rows the service stored
(taken from its return value) with a plain Core executemany, one transaction per 1000.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bench.common import Instance, StatementLog, clear, create_batched, timed
from bench.report import Recorder
from bench.seed import INDUSTRIES, LEVELS, SOURCES, customer_name
from metacrm.engine.systables import sys_audit
from metacrm.engine.writing import records

BATCH = 1000
CLEARED = ("o_customer", "sys_audit")


def inputs(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Values as an import or the API would send them (strings and numbers)."""
    rng = random.Random(seed)
    out = []
    for i in range(1, count + 1):
        values = {"name": customer_name(rng, i), "industry": rng.choice(INDUSTRIES),
                  "phone": f"13{rng.randint(0, 999_999_999):09d}",
                  "employees": rng.randint(1, 5000),
                  "annual_revenue": f"{rng.randint(0, 10**9) / 100:.2f}"}
        if rng.random() < 0.5:
            values["level"] = rng.choice(LEVELS)
        if source := rng.choice(SOURCES):
            values["source"] = source
        out.append(values)
    return out


def create_one_by_one(inst: Instance, values: list[dict]) -> None:
    registry = inst.registry()
    with Session(inst.engine) as session:
        for start in range(0, len(values), BATCH):
            with session.begin():
                for v in values[start:start + BATCH]:
                    records.create(session, registry, "customer", v, actor=inst.actor)


def core_executemany(inst: Instance, rows: list[dict]) -> None:
    table = inst.registry().table("customer")
    stmt = insert(table)
    for start in range(0, len(rows), BATCH):
        with inst.engine.begin() as conn:
            conn.execute(stmt, rows[start:start + BATCH])


def core_one_by_one(inst: Instance, rows: list[dict]) -> None:
    """The least SQL a one-by-one create can send: one INSERT … RETURNING per record and
    one audit executemany per commit (checks left to the indexes). Not a target, a floor."""
    table = inst.registry().table("customer")
    add = insert(table).returning(table.c.id)
    for start in range(0, len(rows), BATCH):
        audit = []
        with inst.engine.begin() as conn:
            for row in rows[start:start + BATCH]:
                new_id = conn.execute(add, row).scalar_one()
                audit.append({"object": "customer", "record_id": new_id, "action": "create",
                              "actor_id": row["created_by"], "at": row["created_at"],
                              "changes": {"name": [None, row["name"]]}})
            conn.execute(insert(sys_audit), audit)


def statements_per_create(inst: Instance) -> int:
    registry = inst.registry()
    log = StatementLog(inst.engine)
    try:
        with Session(inst.engine) as session, session.begin(), log.record() as seen:
            records.create(session, registry, "customer", {"name": "statement count"},
                           actor=inst.actor)
    finally:
        log.close()
    return len(seen)


def run(inst: Instance, rec: Recorder, count: int) -> None:
    values = inputs(count)
    clear(inst, CLEARED)
    stored: list[dict] = []
    many = timed(lambda: stored.extend(create_batched(inst, "customer", values, BATCH)))
    rows = [{k: v for k, v in row.items() if k != "id"} for row in stored]
    clear(inst, CLEARED)
    core = timed(lambda: core_executemany(inst, rows))
    clear(inst, CLEARED)
    single = timed(lambda: create_one_by_one(inst, values))
    clear(inst, CLEARED)
    core_single = timed(lambda: core_one_by_one(inst, rows))
    clear(inst, CLEARED)
    rec.add("create", f"create_many x{count:,} (batches of {BATCH})", count / many, "rec/s",
            key=True)
    rec.add("create", f"Core executemany x{count:,} (same rows)", count / core, "rec/s")
    rec.add("create", "create_many / Core executemany (time)", many / core, "x", "<= 3")
    target = ">= 7000" if inst.dialect == "sqlite" else None
    rec.add("create", f"create one by one x{count:,} (commit/{BATCH})", count / single,
            "rec/s", target, key=True)
    rec.add("create", f"Core one by one x{count:,} (1 INSERT/record)", count / core_single,
            "rec/s", note="information: the floor for one by one", key=True)
    rec.add("create", "statements of a first create in a transaction",
            statements_per_create(inst), "stmts", note="+ the audit write at commit")
