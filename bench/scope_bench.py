"""Benchmark: a list scoped to a department tree costs about what the admin's list costs.

Seeded in bulk: a department tree of 5 levels (fanout 4: 341 departments), 2,000 users
with superiors (a user's superior is the head of their department, a head's the head of
the parent department), a role ``scoped`` reading ``department_tree`` on every object,
``size`` customers owned by random users (department: the owner's) and team members on
a tenth of them. Measured, interleaved: ``query.list_records`` (page 1, a keyset page
deep in the list, a filtered page) for the super administrator against the head of a
level-2 department (a quarter of the records) and of a level-4 one (1.5%). The plans of
the scoped statements are printed and saved next to the results.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, event, insert, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from bench import seed
from bench.common import Instance, StatementLog, interleaved, median, ms, timed
from bench.report import RESULTS_DIR, Recorder
from metacrm.engine.access import org, permissions, roles, users
from metacrm.engine.actor import Actor
from metacrm.engine.reading import query
from metacrm.engine.systables import sys_department, sys_team_member, sys_user, sys_user_role

OBJECT = "customer"
FANOUT, LEVELS = 4, 5  # 1 + 4 + 16 + 64 + 256 = 341 departments
USERS = 2_000
TEAM_SHARE = 0.10
PAGE_SIZE = 20
DEEP_PAGE = 50
FILTER = [["level", "eq", "A"]]  # a quarter of the rows, an indexed select field
ROLE = "scoped"
BUDGET_SECONDS = 40.0
RATIO_TARGET = "<= 1.3"


@dataclass
class Org:
    """What the seed made: who heads which department, and each user's department."""

    levels: dict[int, int]  # department id → level (1: the root)
    heads: dict[int, int]  # department id → its head's user id
    user_department: dict[int, int]  # user id → department id

    def head_at(self, level: int) -> int:
        return self.heads[min(d for d, lv in self.levels.items() if lv == level)]


# -- seed -------------------------------------------------------------------------------
def seed_org(inst: Instance, rng: random.Random) -> Org:
    """Departments, users, superiors and the ``scoped`` role, through Core (small)."""
    now = dt.datetime.now(dt.UTC)
    password = generate_password_hash("scope-bench-password")  # one hash: hashing is slow
    with Session(inst.engine) as session, session.begin():
        root = org.root_department_id(session)
        levels, parents = {root: 1}, {root: None}
        layer = [root]
        for level in range(2, LEVELS + 1):
            rows = [{"name": f"部门 {level}-{i}", "parent_id": p, "position": j,
                     "created_at": now}
                    for i, (p, j) in enumerate((p, j) for p in layer for j in range(FANOUT))]
            ids = session.execute(insert(sys_department).returning(
                sys_department.c.id, sort_by_parameter_order=True), rows).scalars().all()
            for row, d in zip(rows, ids, strict=True):
                levels[d], parents[d] = level, row["parent_id"]
            layer = ids
        departments = sorted(levels)
        # One head per department, the other users spread at random.
        placed = departments + [rng.choice(departments) for _ in range(USERS - len(departments))]
        rows = [{"username": f"u{i:05d}", "display_name": f"用户 {i:05d}",
                 "password_hash": password, "active": True, "language": "zh",
                 "department_id": d, "created_at": now} for i, d in enumerate(placed)]
        ids = session.execute(insert(sys_user).returning(
            sys_user.c.id, sort_by_parameter_order=True), rows).scalars().all()
        heads = dict(zip(departments, ids, strict=False))
        user_department = dict(zip(ids, placed, strict=True))

        def superior(user: int, department: int) -> int | None:
            if heads[department] != user:
                return heads[department]
            parent = parents[department]
            return None if parent is None else heads[parent]

        conn = session.connection()
        conn.execute(update(sys_user).where(sys_user.c.id == bindparam("uid"))
                     .values(superior_id=bindparam("sup")),
                     [{"uid": u, "sup": superior(u, d)} for u, d in user_department.items()])
        conn.execute(update(sys_department).where(sys_department.c.id == bindparam("did"))
                     .values(head_id=bindparam("hid")),
                     [{"did": d, "hid": u} for d, u in heads.items()])
        role = roles.create_role(session, ROLE, {"en": "Department tree", "zh": "本部门及下属"})
        roles.set_grants(session, role, {(permissions.ALL_OBJECTS, "read"): "department_tree"},
                         None)
        conn.execute(insert(sys_user_role), [{"user_id": u, "role_id": role} for u in ids])
    return Org(levels, heads, user_department)


def seed_records(inst: Instance, rng: random.Random, size: int, people: Org) -> None:
    """``size`` customers owned by random users, and team members on a tenth of them."""
    registry = inst.registry()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    owners = list(people.user_department.items())
    columns, rows = seed.customer_rows(rng, size, inst.actor.user_id, now)
    assert columns[0] == "owner"

    def owned() -> Iterator[tuple]:
        pick = rng.choice
        for row in rows:
            user, department = pick(owners)
            yield (user, *row[1:], department)

    seed.bulk_load(inst, registry.table(OBJECT), [*columns, "department"], owned())
    today = now.date()

    def members() -> Iterator[tuple]:
        user_ids = list(people.user_department)
        for record_id in rng.sample(range(1, size + 1), int(size * TEAM_SHARE)):
            roll = rng.random()
            expires = None if roll < 0.7 else today + dt.timedelta(
                days=rng.randint(-180, -1) if roll < 0.85 else rng.randint(0, 180))
            yield (OBJECT, record_id, rng.choice(user_ids), rng.choice(("read", "write")),
                   expires, now)

    seed.bulk_load(inst, sys_team_member, ["object", "record_id", "user_id", "access",
                                           "expires_on", "added_at"], members())
    inst.counts = {OBJECT: size, "team members": int(size * TEAM_SHARE),
                   "departments": len(people.levels), "users": USERS + 1}


# -- calls --------------------------------------------------------------------------------
@dataclass
class Viewer:
    """A user as a request sees them: the actor, and their access already loaded."""

    name: str
    actor: Actor
    access: permissions.Access


def viewer(inst: Instance, name: str, user_id: int) -> Viewer:
    with Session(inst.engine) as session:
        actor = users.load_actor(session, user_id)
        assert actor is not None
        return Viewer(name, actor, permissions.access_of(session, actor))


def list_page(inst: Instance, registry, who: Viewer, **params: Any) -> query.Page:
    with Session(inst.engine) as session:
        permissions.remember_access(session, who.access)  # loaded with the user, as a request
        return query.list_records(session, registry, OBJECT,
                                  query.ListParams(page_size=PAGE_SIZE, **params),
                                  actor=who.actor)


def deep_cursor(inst: Instance, registry, who: Viewer) -> str:
    """The cursor of page DEEP_PAGE, following next_cursor from page 1."""
    cursor = list_page(inst, registry, who).next_cursor
    for _ in range(DEEP_PAGE - 2):
        cursor = list_page(inst, registry, who, cursor=cursor).next_cursor
    assert cursor, f"{who.name}: fewer than {DEEP_PAGE} pages"
    return cursor


# -- plans ------------------------------------------------------------------------------
class Captured:
    """The statements (with their parameters) one call sends, to EXPLAIN them as sent."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sent: list[tuple[str, Any]] = []

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.sent.append((statement, parameters))

    def __enter__(self) -> Captured:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def explain(inst: Instance, statement: str, parameters: Any) -> str:
    with inst.engine.connect() as conn:
        if inst.dialect == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            return "\n".join(lines)
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
        return "\n".join(r[0] for r in rows)


def full_scans(plan: str, table: str, dialect: str) -> list[str]:
    """Plan lines that read the whole object table without an index."""
    if dialect == "sqlite":
        bare = re.compile(rf"\bSCAN {re.escape(table)}\b(?!.*\bUSING\b)")
    else:
        bare = re.compile(rf"\bSeq Scan on {re.escape(table)}\b")
    return [line.strip() for line in plan.splitlines() if bare.search(line)]


def plans(inst: Instance, rec: Recorder, registry, who: Viewer) -> None:
    """EXPLAIN the scoped page and count statements; check that they read indexes."""
    table = registry.table(OBJECT).name
    with Captured(inst.engine) as captured:
        list_page(inst, registry, who)
    sections, page_plan, count_plan = [], "", ""
    for statement, parameters in captured.sent:
        plan = explain(inst, statement, parameters)
        if "count(" in statement.lower():
            count_plan = plan
        else:
            page_plan = plan
        sections.append(f"-- {statement}\n-- parameters: {parameters!r}\n{plan}\n")
    text_ = (f"{inst.dialect}, {inst.counts.get(OBJECT, 0):,} {OBJECT} rows, {who.name}\n\n"
             + "\n".join(sections))
    print(text_, flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(rec.started))
    path = RESULTS_DIR / f"scope-plans-{stamp}-{inst.dialect}-{rec.size}.txt"
    path.write_text(text_, encoding="utf-8")
    scans = full_scans(page_plan, table, inst.dialect)
    order = re.search(r"ix_\w+_created_at", page_plan) is not None
    rec.check("scope", "scope uses indexes (page: the order's index)", not scans and order,
              note="; ".join(scans) or f"order index {order}; {path.name}")
    department = re.search(r"ix_\w+_department", count_plan) is not None
    count_scans = full_scans(count_plan, table, inst.dialect)
    rec.check("scope", "scope uses indexes (capped count: the department index)",
              department and not count_scans,
              note="; ".join(count_scans) or f"department index {department}; {path.name}")


# -- the benchmark ----------------------------------------------------------------------
def run(inst: Instance, rec: Recorder, size: int, repeat: int, seed_value: int = 7) -> None:
    """Seed ``size`` scoped customers on an installed instance, then measure."""
    rng = random.Random(seed_value)
    start = time.perf_counter()
    people = seed_org(inst, rng)
    rec.add("setup", f"seed org ({len(people.levels)} departments, {USERS:,} users)",
            time.perf_counter() - start, "s")
    rec.add("setup", f"seed {size:,} {OBJECT} rows + team members (bulk load)",
            timed(lambda: seed_records(inst, rng, size, people)), "s", note=str(inst.counts))
    rec.add("setup", "ANALYZE", timed(lambda: seed.analyze(inst)), "s")
    measure(inst, rec, people, repeat)


def measure(inst: Instance, rec: Recorder, people: Org, repeat: int) -> None:
    registry = inst.registry()
    admin = viewer(inst, "admin", inst.actor.user_id)
    l2 = viewer(inst, "level-2 head", people.head_at(2))
    l4 = viewer(inst, "level-4 head", people.head_at(4))
    for who in (l2, l4):
        assert who.access.scopes(OBJECT, "read") == {"department_tree"}, who.access
    cursors = {who.name: deep_cursor(inst, registry, who) for who in (admin, l2, l4)}
    shares = _shares(inst, registry, (l2, l4))
    cases = (("p1", "page 1", {}), ("deep", f"page {DEEP_PAGE} (cursor)", None),
             ("filter", "page 1, level = A", {"filter": FILTER}))

    def call(who: Viewer, params: dict | None) -> Callable[[], query.Page]:
        params = {"cursor": cursors[who.name]} if params is None else params
        return lambda: list_page(inst, registry, who, **params)

    for who, target in ((l2, RATIO_TARGET), (l4, None)):
        # Each scoped viewer against the admin on its own: a slow call in the same round
        # would leave the caches cold for the next one.
        calls = {f"{key} {w.name}": call(w, params) for key, _, params in cases
                 for w in (admin, who)}
        samples = interleaved(calls, repeat=repeat, budget=BUDGET_SECONDS / 2)
        t = {name: median(values) for name, values in samples.items()}
        for key, label, _ in cases:
            rec.add("scope", f"{label}, admin (with {who.name})", ms(t[f"{key} admin"]), "ms")
            rec.add("scope", f"{label}, {who.name}", ms(t[f"{key} {who.name}"]), "ms",
                    note=shares[who.name])
            # A filter independent of the scope makes the capped count read about
            # 1/share more rows than the admin's: reported, not held to the target.
            goal = target if key != "filter" else None
            rec.add("scope", f"{label}: {who.name} / admin",
                    t[f"{key} {who.name}"] / t[f"{key} admin"], "x", goal,
                    note="" if goal else "information: a small subtree" if not target
                    else "information: the count reads ~1/share more rows", key=True)
    _statements(inst, rec, registry, (admin, l2, l4), cursors)
    plans(inst, rec, registry, l2)


def _shares(inst: Instance, registry, viewers: tuple[Viewer, ...]) -> dict[str, str]:
    """How many records each scoped viewer sees (exact count; not timed)."""
    out = {}
    for who in viewers:
        total = list_page(inst, registry, who, count="exact").total or 0
        out[who.name] = f"sees {total:,} records"
    return out


def _statements(inst: Instance, rec: Recorder, registry, viewers: tuple[Viewer, ...],
                cursors: dict[str, str]) -> None:
    """No extra queries for the scope: each scoped call sends as many statements as the
    admin's (the scope is part of the one statement, not a lookup per row)."""
    log = StatementLog(inst.engine)
    counts: dict[tuple[str, str], int] = {}
    try:
        for who in viewers:
            for key, params in (("page 1", {}), (f"page {DEEP_PAGE}", {"cursor": cursors[who.name]}),
                                ("filtered", {"filter": FILTER})):
                with log.record() as seen:
                    list_page(inst, registry, who, **params)
                counts[(who.name, key)] = len(seen)
    finally:
        log.close()
    admin = viewers[0].name
    for who in viewers[1:]:
        for key in ("page 1", f"page {DEEP_PAGE}", "filtered"):
            rec.add("scope", f"statements, {key}: {who.name} (admin: {counts[(admin, key)]})",
                    counts[(who.name, key)], "stmts", f"== {counts[(admin, key)]}")
    # Per request, a scoped user's org subtree and team memberships are read once (two
    # small indexed queries), whatever the number of lists and rows: shown, not a target.
    log = StatementLog(inst.engine)
    try:
        for who in viewers:
            fresh = viewer(inst, who.name, who.actor.user_id)  # nothing resolved yet
            with log.record() as seen:
                list_page(inst, registry, fresh)
                list_page(inst, registry, fresh, filter=FILTER)
            rec.add("scope", f"statements for two lists in a fresh request: {who.name}",
                    len(seen), "stmts")
    finally:
        log.close()
