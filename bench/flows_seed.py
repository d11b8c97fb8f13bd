"""Seed data for the flows benchmark, bulk-loaded straight into the engine's tables.

A manager with ten reps under him and 89 other employees (the built-in employee role:
data scope "own"); ``size`` opportunities owned by the reps (a tenth each), four in
five of business type standard, each with its open stage-history entry; ``size``
approvals (three in ten pending, on distinct records) with their tasks, ``size // 100``
of the active ones the manager's; ``size`` todos and ``size`` notifications spread over
everyone. Nothing goes through the records service: this is setup, not measured.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from bench import seed
from bench.common import Instance
from metacrm.engine.access import org, roles
from metacrm.engine.systables import (
    sys_approval,
    sys_approval_task,
    sys_notification,
    sys_stage_history,
    sys_todo,
    sys_user,
    sys_user_role,
)
from metacrm.metadata.flows import DEFAULT_ROLE

OBJECT = "opportunity"
REPS, OTHERS = 10, 89
PROCESSES = {"standard": "opportunity_standard", "project": "opportunity_project"}
STANDARD_SHARE = 0.8
PENDING_SHARE = 0.3
READ_SHARE = 0.5  # of todos handled and of notifications read


@dataclass
class People:
    manager: int
    reps: list[int]
    everyone: list[int]  # the manager, the reps and the others


def seed_people(inst: Instance) -> People:
    """The users, through Core with one password hash (hashing is slow)."""
    stamp = dt.datetime.now(dt.UTC)
    password = generate_password_hash("flows-bench-password")
    with Session(inst.engine) as session, session.begin():
        department = org.root_department_id(session)
        role = roles.role_id(session, DEFAULT_ROLE)

        def add(rows: list[dict]) -> list[int]:
            return list(session.execute(insert(sys_user).returning(
                sys_user.c.id, sort_by_parameter_order=True), rows).scalars())

        def row(name: str, superior: int | None) -> dict:
            return {"username": name, "display_name": name, "password_hash": password,
                    "active": True, "language": "zh", "department_id": department,
                    "superior_id": superior, "created_at": stamp}

        manager, = add([row("manager", None)])
        reps = add([row(f"rep{i:02d}", manager) for i in range(REPS)])
        others = add([row(f"user{i:03d}", None) for i in range(OTHERS)])
        everyone = [manager, *reps, *others]
        session.execute(insert(sys_user_role), [{"user_id": u, "role_id": role}
                                                for u in everyone])
    return People(manager, reps, everyone)


def seed_opportunities(inst: Instance, rng: random.Random, size: int,
                       people: People) -> None:
    """Customers, contacts and ``size`` opportunities, with their open history entries.

    Every standard opportunity in ``qualify`` has a contact, so it meets the next stage's
    required fields once its work is ticked (the moves need such records)."""
    registry = inst.registry()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    customers = max(100, size // 10)
    admin = inst.actor.user_id
    department = _department(inst)
    seed.bulk_load(inst, registry.table("customer"),
                   *seed.customer_rows(rng, customers, admin, now))
    seed.bulk_load(inst, registry.table("contact"),
                   *seed.contact_rows(rng, customers, admin, now))
    columns, rows = seed.opportunity_rows(rng, size, customers, customers, admin, now)
    at = {c: i for i, c in enumerate(columns)}
    rates = {t: {s.name: s.win_rate for s in registry.stage_processes[p].stages}
             for t, p in PROCESSES.items()}
    stages: list[tuple[str, str]] = []  # (process, stage) by id

    def owned() -> Iterator[tuple]:
        for row in rows:
            values = list(row)
            kind = "standard" if rng.random() < STANDARD_SHARE else "project"
            stage = values[at["stage"]]
            values[at["owner"]] = rng.choice(people.reps)
            values[at["win_rate"]] = rates[kind][stage]
            if kind == "standard" and stage == "qualify" and values[at["contact"]] is None:
                values[at["contact"]] = rng.randint(1, customers)
            stages.append((PROCESSES[kind], stage))
            yield (*values, kind, department)

    seed.bulk_load(inst, registry.table(OBJECT), [*columns, "business_type", "department"],
                   owned())

    def history() -> Iterator[tuple]:
        for record_id, (process, stage) in enumerate(stages, start=1):
            yield (OBJECT, record_id, process, stage, None, "start",
                   now - dt.timedelta(days=rng.randint(1, 90)), admin)

    seed.bulk_load(inst, sys_stage_history, ["object", "record_id", "process", "stage",
                                             "from_stage", "direction", "entered_at",
                                             "entered_by"], history())
    inst.counts = {"customer": customers, "contact": customers, OBJECT: size,
                   "stage history": size}


def _department(inst: Instance) -> int | None:
    with Session(inst.engine) as session:
        return org.root_department_id(session)


def seed_approvals(inst: Instance, rng: random.Random, size: int, people: People,
                   spare: set[int]) -> None:
    """``size`` approvals and their tasks; pending ones on distinct records outside
    ``spare`` (records a move needs unlocked)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lockable = [i for i in range(1, size + 1) if i not in spare]
    pending = rng.sample(lockable, min(int(size * PENDING_SHARE), len(lockable)))
    mine = size // 100  # the manager's active tasks
    others = [u for u in people.everyone if u != people.manager]
    approvals, tasks = [], []
    for approval_id in range(1, size + 1):
        submitted = now - dt.timedelta(minutes=rng.randint(1, 200_000))
        is_pending = approval_id <= len(pending)
        record = pending[approval_id - 1] if is_pending else rng.randint(1, size)
        status = "pending" if is_pending else rng.choice(("approved", "approved", "rejected",
                                                          "withdrawn"))
        step = rng.randint(0, 1)
        approvals.append(("large_opportunity", OBJECT, record, status, "submit",
                          rng.choice(people.reps), submitted,
                          None if is_pending else submitted + dt.timedelta(days=1), step, 1,
                          {}))
        at = submitted + dt.timedelta(minutes=rng.randint(1, 600))
        if step == 1:
            tasks.append((approval_id, 1, 0, rng.choice(people.everyone), "approved",
                          "approver", submitted, at))
        if is_pending:
            user = people.manager if approval_id <= mine else rng.choice(others)
            tasks.append((approval_id, 1, step, user, "active", "approver", at, None))
        elif status != "withdrawn":
            tasks.append((approval_id, 1, step, rng.choice(people.everyone), status,
                          "approver", at, at + dt.timedelta(hours=2)))
    seed.bulk_load(inst, sys_approval, ["flow", "object", "record_id", "status", "trigger",
                                        "submitter_id", "submitted_at", "finished_at", "step",
                                        "round", "chosen"], iter(approvals))
    with inst.engine.connect() as conn:  # the tasks name approvals by their load order
        assert conn.execute(select(func.min(sys_approval.c.id),
                                   func.max(sys_approval.c.id))).one() == (1, size)
    seed.bulk_load(inst, sys_approval_task, ["approval_id", "round", "step", "user_id",
                                             "status", "kind", "created_at", "decided_at"],
                   iter(tasks))
    inst.counts.update({"approvals": size, "approval tasks": len(tasks),
                        "manager's active tasks": min(mine, len(pending))})


def seed_inbox(inst: Instance, rng: random.Random, size: int, people: People) -> None:
    """``size`` todos and ``size`` notifications, half of each handled or read."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def todos() -> Iterator[tuple]:
        for _ in range(size):
            created = now - dt.timedelta(minutes=rng.randint(1, 200_000))
            work = rng.random() < 0.7
            yield (rng.choice(people.everyone), "stage_work" if work else "assigned", OBJECT,
                   rng.randint(1, size), "qualify" if work else None,
                   "confirm_contact" if work else None, {},
                   created + dt.timedelta(days=3) if work else None, created,
                   created + dt.timedelta(hours=5) if rng.random() < READ_SHARE else None)

    def notes() -> Iterator[tuple]:
        for _ in range(size):
            created = now - dt.timedelta(minutes=rng.randint(1, 200_000))
            yield (rng.choice(people.everyone), "approval_submitted", OBJECT,
                   rng.randint(1, size), rng.randint(1, size), rng.choice(people.reps), {},
                   created,
                   created + dt.timedelta(hours=5) if rng.random() < READ_SHARE else None)

    seed.bulk_load(inst, sys_todo, ["user_id", "kind", "object", "record_id", "stage", "item",
                                    "params", "due_at", "created_at", "handled_at"], todos())
    seed.bulk_load(inst, sys_notification, ["user_id", "kind", "object", "record_id",
                                            "approval_id", "actor_id", "params", "created_at",
                                            "read_at"], notes())
    inst.counts.update({"todos": size, "notifications": size})
