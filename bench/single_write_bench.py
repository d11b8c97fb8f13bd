"""Benchmark: creating records one at a time, one transaction each, as a form or an API
call does.

The object is plain (``memo``: text, a decimal, a select with a default, an optional
lookup left empty; no lines, roll-ups, auto-number or stage process), installed next to
the sample template and its flows. Each side creates the same values in one session
(warm: the user's access is known, as a request loads it with the user), committing
after every record:

- the records service, ``records.create``, for a user whose role grants their own
  records (coercion, validation, defaults, field rules, the scope check, the audit
  entry) and for a super administrator;
- the baseline: a plain SQLAlchemy ORM class mapped on the same table, ``session.add``
  then ``commit`` per record (no checks, no audit).

Rounds alternate between the sides (a shared machine drifts); medians are compared.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlalchemy.orm import registry as orm_registry

from bench.common import (
    FLOWS,
    SAMPLE,
    Instance,
    StatementLog,
    clear,
    install_instance,
    interleaved,
    median,
)
from bench.report import Recorder
from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.engine.writing import records

OBJECT = "memo"
PLAIN = Path(__file__).resolve().parent / "plain"  # the memo object's folder
CLEARED = (f"o_{OBJECT}", "sys_audit")
TARGET = ">= 0.8"  # the service's records/s against the ORM's


def install(url: str, workdir: Path) -> Instance:
    """The sample template with its flows, and the plain object."""
    return install_instance(url, (SAMPLE, FLOWS, PLAIN))


def employee(inst: Instance) -> Actor:
    """A user with the built-in employee role: every object, own records only."""
    with Session(inst.engine) as session, session.begin():
        user_id = users.create_user(session, "single_writer", "writer-password-1")
    with Session(inst.engine) as session:
        actor = users.load_actor(session, user_id)
    assert actor is not None and not actor.is_admin
    return actor


def inputs(count: int) -> list[dict[str, Any]]:
    """Values as a form or the API sends them (strings)."""
    return [{"title": f"备忘 {i:06d}", "body": "回访客户，确认报价与交付时间。",
             "amount": f"{(i % 9973) * 1.25:.2f}", **({"priority": "high"} if i % 4 == 0 else {})}
            for i in range(count)]


def service(inst: Instance, actor: Actor, values: list[dict]) -> Callable[[], None]:
    registry = inst.registry()

    def run() -> None:
        with Session(inst.engine) as session:
            for v in values:
                with session.begin():
                    records.create(session, registry, OBJECT, v, actor=actor)
    return run


def orm_class(table: Table) -> type:
    """A plain mapped class on the object's table, as an ORM application would have."""
    class Memo:
        pass
    orm_registry().map_imperatively(Memo, table)
    return Memo


def orm(inst: Instance, actor: Actor, values: list[dict]) -> Callable[[], None]:
    """What the service stores for each record, given to the ORM ready-made."""
    memo = orm_class(inst.registry().table(OBJECT))
    department = actor.department_id

    def run() -> None:
        with Session(inst.engine) as session:
            for v in values:
                stamp = dt.datetime.now(dt.UTC)
                session.add(memo(
                    title=v["title"], body=v["body"], amount=Decimal(v["amount"]),
                    priority=v.get("priority", "normal"), owner=actor.user_id,
                    department=department, created_at=stamp, updated_at=stamp,
                    created_by=actor.user_id, updated_by=actor.user_id, version=1,
                    deleted=False))
                session.commit()
    return run


def cpu_timed(fn: Callable[[], None], into: list[float]) -> Callable[[], None]:
    """``fn``, noting the CPU time of this process it took (the rounds time the wall)."""
    def run() -> None:
        start = time.process_time()
        fn()
        into.append(time.process_time() - start)
    return run


def statements_per_create(inst: Instance, actor: Actor) -> int:
    """Statements of a warm create (the second in the session), transaction control apart."""
    registry = inst.registry()
    log = StatementLog(inst.engine)
    try:
        with Session(inst.engine) as session:
            with session.begin():
                records.create(session, registry, OBJECT, {"title": "warm-up"}, actor=actor)
            with log.record() as seen, session.begin():
                records.create(session, registry, OBJECT, {"title": "counted"}, actor=actor)
    finally:
        log.close()
    return len(seen)


def run(inst: Instance, rec: Recorder, count: int, repeat: int) -> None:
    rep = employee(inst)
    values = inputs(count)
    runs = {"orm": orm(inst, rep, values), "employee": service(inst, rep, values),
            "admin": service(inst, inst.actor, values)}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    samples = interleaved({name: cpu_timed(fn, cpu[name]) for name, fn in runs.items()},
                          repeat, warmup=1)
    clear(inst, CLEARED)
    rate = {name: count / median(times) for name, times in samples.items()}
    per_record = {name: median(times) / count * 1000 for name, times in cpu.items()}
    rec.add("single", f"ORM add + commit x{count:,} (1 per transaction)", rate["orm"],
            "rec/s", key=True)
    rec.add("single", f"records.create, own-scope user x{count:,}", rate["employee"], "rec/s",
            key=True)
    rec.add("single", f"records.create, super admin x{count:,}", rate["admin"], "rec/s")
    rec.add("single", "records.create (own scope) / ORM (rec/s)",
            rate["employee"] / rate["orm"], "x", TARGET)
    rec.add("single", "records.create (admin) / ORM (rec/s)", rate["admin"] / rate["orm"],
            "x", TARGET)
    rec.add("single", "CPU ms per record: ORM", per_record["orm"], "ms",
            note="this process only: commits waiting on the disk do not count")
    rec.add("single", "CPU ms per record: records.create (own scope)", per_record["employee"],
            "ms")
    rec.add("single", "statements of a warm plain create", statements_per_create(inst, rep),
            "stmts", "<= 3", note="BEGIN/COMMIT apart; the ORM sends 1")
