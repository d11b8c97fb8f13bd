"""Benchmark: a reminder rule's todo items, the engine against hand-written Core.

Seeded in bulk: the people of ``bench.flows_seed`` (a manager, his reps, other users),
the manager also holding a role that reads his and his subordinates' records; ``size``
customers whose next contact is today (in the instance's zone) owned by the reps, and
``size`` more owned by the other users or due another day. Measured for the manager
looking at "mine and my subordinates'" todos of the sample's ``customer.next_contact``
rule (今日需联系): the first page of 50 of the due scene (``reminders.page``), and the due
count the badge reads (``reminders.due_counts``), against the same answers written by
hand: owner among the users, the day's bounds, not followed up today, no handled mark.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exists, func, insert, or_, select
from sqlalchemy.orm import Session

from bench import flows_seed, seed
from bench.common import Instance, interleaved, median, ms
from bench.report import Recorder
from bench.scope_bench import viewer
from metacrm import clock
from metacrm.engine.access import permissions, roles
from metacrm.engine.flows import reminders, todo_kinds
from metacrm.engine.systables import sys_reminder_mark, sys_user_role

OBJECT, RULE = "customer", "customer.next_contact"
ROLE = "team_lead"
TARGET = "<= 1.5"
BUDGET_SECONDS = 20.0


def run(inst: Instance, rec: Recorder, size: int, repeat: int, seed_value: int = 5) -> None:
    rng = random.Random(seed_value)
    start = time.perf_counter()
    people = flows_seed.seed_people(inst)
    with Session(inst.engine) as session, session.begin():
        role = roles.create_role(session, ROLE, {"en": "Team lead", "zh": "主管"})
        roles.set_grants(session, role, {(permissions.ALL_OBJECTS, "read"):
                                         "own_and_subordinates"}, None)
        session.execute(insert(sys_user_role).values(user_id=people.manager, role_id=role))
    seed_customers(inst, rng, size, people)
    rec.add("setup", f"seed {2 * size:,} customers, {size:,} due today (bulk load)",
            time.perf_counter() - start, "s")
    seed.analyze(inst)
    registry = inst.registry()
    rule = registry.reminders[RULE]
    manager = viewer(inst, "manager", people.manager)
    with Session(inst.engine) as session:
        users = todo_kinds.whose(session, manager.actor, "all")

    def session_of() -> Session:
        session = Session(inst.engine)
        permissions.remember_access(session, manager.access)  # loaded with the user
        return session

    def engine_page() -> list[int]:
        with session_of() as session:
            found = reminders.page(session, registry, rule, "due", users=users,
                                   actor=manager.actor)
            return [r["id"] for r in found.items]

    def engine_count() -> int:
        with session_of() as session:
            [count] = session.execute(select(*reminders.due_counts(
                session, registry, [rule], users=users, actor=manager.actor))).one()
            return count

    t = registry.table(OBJECT)
    m = sys_reminder_mark

    def where() -> list[Any]:
        today = clock.today()
        first = dt.datetime.combine(today, dt.time(), clock.zone())
        end = first + dt.timedelta(days=1)
        return [t.c.deleted.is_(False), t.c.owner.in_(users),
                t.c.next_contact_at >= first, t.c.next_contact_at < end,
                or_(t.c.last_followup_at.is_(None), t.c.last_followup_at < first),
                ~exists().where(m.c.user_id == t.c.owner, m.c.reminder == RULE,
                                m.c.record_id == t.c.id, m.c.due_at == t.c.next_contact_at)]

    def base_page() -> list[int]:
        stmt = (select(t.c.id, t.c.name, t.c.owner, t.c.next_contact_at).where(*where())
                .order_by(t.c.next_contact_at, t.c.id).limit(reminders.PAGE + 1))
        with inst.engine.connect() as conn:
            return [r.id for r in conn.execute(stmt)][:reminders.PAGE]

    def base_count() -> int:
        with inst.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t).where(*where())
                                ).scalar_one()

    for name, engine_fn, base_fn in (("page of 50", engine_page, base_page),
                                     ("badge count", engine_count, base_count)):
        samples = interleaved({"engine": engine_fn, "base": base_fn}, repeat=repeat,
                              budget=BUDGET_SECONDS)
        e, b = median(samples["engine"]), median(samples["base"])
        rec.add("reminder", f"{name}: engine", ms(e), "ms", note=f"{size:,} due items")
        rec.add("reminder", f"{name}: baseline", ms(b), "ms")
        rec.add("reminder", f"{name}: engine / baseline", e / b, "x", TARGET, key=True)
        rec.check("reminder", f"{name}: engine == baseline", engine_fn() == base_fn())


def seed_customers(inst: Instance, rng: random.Random, size: int,
                   people: flows_seed.People) -> None:
    """``size`` due today owned by the reps; ``size`` others: other owners or days."""
    registry = inst.registry()
    today = clock.today()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    columns, rows = seed.customer_rows(rng, 2 * size, inst.actor.user_id, now)
    owner = columns.index("owner")
    others = [u for u in people.everyone if u not in people.reps and u != people.manager]

    def at(day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(rng.randint(8, 19), rng.choice((0, 30))),
                                    clock.zone())
        return local.astimezone(dt.UTC)

    def filled() -> Iterator[tuple]:
        for i, row in enumerate(rows):
            values = list(row)
            if i % 2 == 0:
                values[owner] = rng.choice(people.reps)
                due = at(today)
            elif rng.random() < 0.5:
                values[owner] = rng.choice(others)
                due = at(today)
            else:
                values[owner] = rng.choice(people.reps)
                due = at(today + dt.timedelta(days=rng.choice((-30, -3, -1, 1, 2, 10))))
            yield (*values, due)

    seed.bulk_load(inst, registry.table(OBJECT), [*columns, "next_contact_at"], filled())
    with inst.engine.connect() as conn:
        inst.counts[OBJECT] = conn.execute(select(func.count()).select_from(
            registry.table(OBJECT))).scalar_one()
