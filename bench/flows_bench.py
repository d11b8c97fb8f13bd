"""Benchmark: stage processes and approvals, the engine against hand-written Core.

Seeded in bulk (``bench.flows_seed``): ``size`` opportunities owned by ten reps, with
their stage history, ``size`` approvals with their tasks, ``size`` todos and
notifications. Measured, each with its answer checked against the baseline's:

1. kanban column figures: ``query.grouped_totals`` by stage (count, sum of amount) for a
   rep with data scope "own" and for the administrator, against a hand-written GROUP BY;
2. a stage move (``stages.move``, qualify → needs, its work ticked beforehand), one per
   transaction, against the minimum by hand: the record's UPDATE, the history entry
   closed and a new one opened, the audit row;
3. the approval inbox (``approvals.inbox``, pending, 50) of an approver with
   ``size // 100`` active tasks, against the same SELECT in Core;
4. the navigation badges (``todos.counts``, one statement) against three counts.

The plans of the kanban and badge statements are saved next to the results.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, literal_column, select, update
from sqlalchemy.orm import Session

from bench import flows_seed, seed
from bench.common import Instance, StatementLog, interleaved, median, ms, timed
from bench.report import RESULTS_DIR, Recorder
from bench.scope_bench import Captured, Viewer, explain, full_scans, viewer
from metacrm import clock
from metacrm.engine.access import permissions
from metacrm.engine.flows import approvals, stage_moves, stages, todos
from metacrm.engine.reading import query
from metacrm.engine.systables import (
    sys_approval,
    sys_approval_task,
    sys_audit,
    sys_notification,
    sys_stage_history,
    sys_todo,
)

OBJECT = flows_seed.OBJECT
FILTER = [["business_type", "eq", "standard"]]
PROCESS = "opportunity_standard"
FROM, TO = "qualify", "needs"
WORK = "confirm_contact"  # the work of qualify, ticked before a move
INBOX_LIMIT = 50
WARMUP_MOVES = 5
BUDGET_SECONDS = 15.0
CHEAP = 4  # calls of a few ms: more rounds (within the budget), for a steadier median
KANBAN_TARGET, MOVE_TARGET, INBOX_TARGET, COUNTS_TARGET = "<= 1.5", "<= 4", "<= 1.3", "<= 1.2"
COUNTS_MS_TARGET = "<= 5"  # PostgreSQL


def run(inst: Instance, rec: Recorder, size: int, repeat: int, moves: int,
        seed_value: int = 11) -> None:
    """Seed an installed instance (sample + flows) with ``size`` rows each, then measure."""
    rng = random.Random(seed_value)
    start = time.perf_counter()
    people = flows_seed.seed_people(inst)
    flows_seed.seed_opportunities(inst, rng, size, people)
    rec.add("setup", f"seed {size:,} {OBJECT} rows + stage history (bulk load)",
            time.perf_counter() - start, "s")
    mover = people.reps[0]
    pool = movable(inst, mover)
    need = 2 * (moves + WARMUP_MOVES)
    assert len(pool) >= need, f"only {len(pool)} records to move, {need} needed"
    pool = pool[:need]
    rec.add("setup", f"seed {size:,} approvals, todos and notifications (bulk load)",
            timed(lambda: (flows_seed.seed_approvals(inst, rng, size, people, set(pool)),
                           flows_seed.seed_inbox(inst, rng, size, people))), "s",
            note=str(inst.counts))
    rec.add("setup", "ANALYZE", timed(lambda: seed.analyze(inst)), "s")
    registry = inst.registry()
    rep, admin = viewer(inst, "rep", mover), viewer(inst, "admin", inst.actor.user_id)
    manager = viewer(inst, "manager", people.manager)
    assert rep.access.scopes(OBJECT, "read") == {"own"}, rep.access
    kanban(inst, rec, registry, (rep, admin), repeat)
    inbox(inst, rec, manager, repeat)
    counts(inst, rec, manager.actor.user_id, repeat)
    measure_stage_moves(inst, rec, registry, rep, pool)


def movable(inst: Instance, owner: int) -> list[int]:
    """Standard opportunities of ``owner`` in the first stage, with a contact."""
    t = inst.registry().table(OBJECT)
    with inst.engine.connect() as conn:
        return list(conn.execute(select(t.c.id).where(
            t.c.owner == owner, t.c.deleted.is_(False), t.c.business_type == "standard",
            t.c.stage == FROM, t.c.contact.is_not(None)).order_by(t.c.id)).scalars())


def engine_session(inst: Instance, who: Viewer) -> Session:
    """A session as a request has it: the user's access loaded with the user."""
    session = Session(inst.engine)
    permissions.remember_access(session, who.access)
    return session


def plans_file(inst: Instance, rec: Recorder, text_: str) -> str:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(rec.started))
    path = RESULTS_DIR / f"flows-plans-{stamp}-{inst.dialect}-{rec.size}.txt"
    with path.open("a", encoding="utf-8") as out:
        out.write(text_ + "\n")
    return path.name


def explained(inst: Instance, rec: Recorder, title: str, fn: Callable[[], object]) -> str:
    """The plans of the SELECTs ``fn`` sends, saved; returns them."""
    with Captured(inst.engine) as captured:
        fn()
    plans = [explain(inst, s, p) for s, p in captured.sent]
    plans_file(inst, rec, f"== {inst.dialect}, {title}\n" + "\n".join(
        f"-- {s}\n-- parameters: {p!r}\n{plan}\n"
        for (s, p), plan in zip(captured.sent, plans, strict=True)))
    return "\n".join(plans)


# -- 1. kanban column figures -------------------------------------------------------------
def kanban(inst: Instance, rec: Recorder, registry, viewers: tuple[Viewer, ...],
           repeat: int) -> None:
    obj = registry.object(OBJECT)
    t = registry.table(obj)
    by = obj.all_fields[registry.stage_processes[PROCESS].field]
    amount = obj.all_fields["amount"]

    def engine(who: Viewer) -> Callable[[], dict]:
        def call() -> dict:
            with engine_session(inst, who) as session:
                return query.grouped_totals(session, registry, obj,
                                            query.ListParams(filter=FILTER), by=by,
                                            fields=[amount], actor=who.actor)
        return call

    def baseline(owner: int | None, plain: bool = False) -> Callable[[], dict]:
        # As the engine does: SQLite groups by +stage, else its planner reads the whole
        # table through the stage index to skip the sort (``plain``: that statement).
        sqlite = inst.dialect == "sqlite" and not plain

        def call() -> dict:
            where = [t.c.deleted.is_(False), t.c.business_type == "standard"]
            if owner is not None:
                where.append(t.c.owner == owner)
            key = literal_column(f"+{t.name}.stage") if sqlite else t.c.stage
            stmt = select(t.c.stage, func.count(), func.sum(t.c.amount)).where(*where) \
                .group_by(key)
            with inst.engine.connect() as conn:
                return {stage: {"_count": n, "amount": total}
                        for stage, n, total in conn.execute(stmt)}
        return call

    for who in viewers:
        owner = None if who.access.is_super else who.actor.user_id
        calls = {"engine": engine(who), "base": baseline(owner)}
        samples = interleaved(calls, repeat=repeat * CHEAP, budget=BUDGET_SECONDS / 2)
        e, b = median(samples["engine"]), median(samples["base"])
        answer = calls["engine"]()
        rows = sum(v["_count"] for v in answer.values())
        rec.add("flows", f"kanban figures, {who.name}: engine", ms(e), "ms",
                note=f"{rows:,} records in {len(answer)} columns")
        rec.add("flows", f"kanban figures, {who.name}: baseline", ms(b), "ms")
        rec.add("flows", f"kanban figures, {who.name}: engine / baseline", e / b, "x",
                KANBAN_TARGET)
        rec.check("flows", f"kanban figures, {who.name}: engine == baseline",
                  answer == calls["base"](), note=f"{rows:,} records")
        plan = explained(inst, rec, f"kanban figures, {who.name}", calls["engine"])
        scans = full_scans(plan, t.name, inst.dialect)
        if owner is not None:
            index = f"ix_{t.name}_owner"
            rec.check("flows", f"kanban figures, {who.name}: plan reads {index}",
                      index in plan and not scans, note="; ".join(scans))
        else:
            rec.add("flows", f"kanban figures, {who.name}: reads the whole table",
                    float(bool(scans)), "bool", note="information: every row matches; "
                    + ("; ".join(scans) or "index"))
        if inst.dialect == "sqlite":
            plain = median(interleaved({"plain": baseline(owner, plain=True)}, repeat=3,
                                       warmup=1)["plain"])
            rec.add("flows", f"kanban figures, {who.name}: plain GROUP BY stage", ms(plain),
                    "ms", note="information: what SQLite's planner makes of it")


# -- 2. stage moves -----------------------------------------------------------------------
class BaseMove:
    """The least a stage move writes, by hand: four statements in one transaction."""

    def __init__(self, inst: Instance, registry, actor_id: int):
        self.inst, self.actor_id = inst, actor_id
        self.t = registry.table(OBJECT)
        process = registry.stage_processes[PROCESS]
        self.rates = (process.by_name[FROM].win_rate, process.by_name[TO].win_rate)
        # The audit log keeps a percent as its stored text, two decimals.
        self.logged = [str(Decimal(r).quantize(Decimal("0.01"))) for r in self.rates]

    def __call__(self, record_id: int) -> None:
        t, h, now, actor = self.t, sys_stage_history, clock.now(), self.actor_id
        after = self.rates[1]
        with self.inst.engine.begin() as conn:
            done = conn.execute(update(t).where(t.c.id == record_id, t.c.version == 1,
                                                 t.c.deleted.is_(False))
                                .values(stage=TO, win_rate=after, updated_at=now,
                                        updated_by=actor, version=t.c.version + 1)).rowcount
            assert done == 1
            conn.execute(update(h).where(h.c.object == OBJECT, h.c.record_id == record_id,
                                         h.c.left_at.is_(None))
                         .values(left_at=now, left_by=actor))
            conn.execute(insert(h).values(object=OBJECT, record_id=record_id, process=PROCESS,
                                          stage=TO, from_stage=FROM, direction="forward",
                                          entered_at=now, entered_by=actor))
            conn.execute(insert(sys_audit).values(
                object=OBJECT, record_id=record_id, action="update", actor_id=actor, at=now,
                changes={"stage": [FROM, TO], "win_rate": self.logged}))


def measure_stage_moves(inst: Instance, rec: Recorder, registry, who: Viewer, pool: list[int]) -> None:
    """Moves alternate, engine then baseline, each in its own transaction."""
    mine, theirs = pool[0::2], pool[1::2]
    with engine_session(inst, who) as session, session.begin():
        for record_id in mine:
            stages.tick_work(session, registry, OBJECT, record_id, WORK, actor=who.actor)

    def engine(record_id: int) -> None:
        with engine_session(inst, who) as session, session.begin():
            assert stage_moves.move(session, registry, OBJECT, record_id, TO,
                               actor=who.actor).moved

    base = BaseMove(inst, registry, who.actor.user_id)
    log = StatementLog(inst.engine)
    try:
        for i in range(WARMUP_MOVES):
            engine(mine[i])
            base(theirs[i])
        with log.record() as engine_sent:
            engine(mine[WARMUP_MOVES])
        with log.record() as base_sent:
            base(theirs[WARMUP_MOVES])
    finally:
        log.close()
    e_times, b_times = [], []
    for mine_id, theirs_id in zip(mine[WARMUP_MOVES + 1:], theirs[WARMUP_MOVES + 1:],
                                  strict=True):
        e_times.append(timed(lambda r=mine_id: engine(r)))
        b_times.append(timed(lambda r=theirs_id: base(r)))
    e, b = median(e_times), median(b_times)
    n = len(e_times)
    rec.add("flows", f"stage move ({n} moves): engine", ms(e), "ms",
            note=f"{n / sum(e_times):,.0f} moves/s")
    rec.add("flows", f"stage move ({n} moves): baseline", ms(b), "ms",
            note=f"{n / sum(b_times):,.0f} moves/s")
    rec.add("flows", "stage move: engine / baseline", e / b, "x", MOVE_TARGET)
    rec.add("flows", "stage moves per second (engine)", n / sum(e_times), "/s", key=True)
    rec.add("flows", f"statements per move: engine (baseline: {len(base_sent)})",
            len(engine_sent), "stmts", note="information: checks, todos")
    rec.check("flows", "stage move: engine's writes == baseline's",
              *moved_alike(inst, registry, mine, theirs))


def moved_alike(inst: Instance, registry, mine: list[int], theirs: list[int]
                ) -> tuple[bool, str]:
    """Each moved record, its open history entry and its audit row, timestamps aside."""
    t, h, a = registry.table(OBJECT), sys_stage_history, sys_audit

    def writes(ids: list[int]) -> set[tuple]:
        with inst.engine.connect() as conn:
            records = conn.execute(select(t.c.stage, t.c.win_rate, t.c.version, t.c.updated_by)
                                   .where(t.c.id.in_(ids))).all()
            history = conn.execute(select(h.c.record_id, h.c.process, h.c.stage,
                                          h.c.from_stage, h.c.direction, h.c.entered_by)
                                   .where(h.c.object == OBJECT, h.c.record_id.in_(ids),
                                          h.c.left_at.is_(None))).all()
            closed = conn.execute(select(func.count()).select_from(h).where(
                h.c.object == OBJECT, h.c.record_id.in_(ids),
                h.c.left_at.is_not(None))).scalar_one()
            audits = conn.execute(select(a.c.action, a.c.actor_id, a.c.changes).where(
                a.c.object == OBJECT, a.c.record_id.in_(ids))).all()
        out = {("record", *r) for r in records} | {("history", *r[1:]) for r in history}
        out |= {("audit", r.action, r.actor_id, repr(sorted(r.changes.items())))
                for r in audits}
        shape = (len(records), len(history), closed, len(audits))
        return out | {("shape", *shape)}

    ours, base = writes(mine), writes(theirs)
    return ours == base, "" if ours == base else f"engine {sorted(ours - base)[:3]} " \
        f"baseline {sorted(base - ours)[:3]}"


# -- 3. the approval inbox ------------------------------------------------------------------
def inbox(inst: Instance, rec: Recorder, who: Viewer, repeat: int) -> None:
    a, t = sys_approval, sys_approval_task

    def engine() -> list[dict[str, Any]]:
        with engine_session(inst, who) as session:
            return approvals.inbox(session, who.actor, "pending", limit=INBOX_LIMIT)

    def baseline() -> list[dict[str, Any]]:
        stmt = (select(a, t.c.id.label("task_id"), t.c.created_at.label("task_at"))
                .join(t, t.c.approval_id == a.c.id)
                .where(t.c.user_id == who.actor.user_id, t.c.status == "active")
                .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(INBOX_LIMIT))
        with inst.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    samples = interleaved({"engine": engine, "base": baseline}, repeat=repeat * CHEAP,
                          budget=BUDGET_SECONDS / 2)
    e, b = median(samples["engine"]), median(samples["base"])
    with inst.engine.connect() as conn:
        active = conn.execute(select(func.count()).select_from(t).where(
            t.c.user_id == who.actor.user_id, t.c.status == "active")).scalar_one()
    rec.add("flows", "approval inbox: engine", ms(e), "ms",
            note=f"{active:,} active tasks of the approver")
    rec.add("flows", "approval inbox: baseline", ms(b), "ms")
    rec.add("flows", "approval inbox: engine / baseline", e / b, "x", INBOX_TARGET)
    found = engine()
    rec.check("flows", "approval inbox: engine == baseline",
              len(found) == INBOX_LIMIT and found == baseline(), note=f"{len(found)} rows")
    plan = explained(inst, rec, "approval inbox", engine)
    rec.check("flows", "approval inbox: plan reads ix_sys_approval_task_user",
              "ix_sys_approval_task_user" in plan)


# -- 4. the navigation badges -------------------------------------------------------------
def counts(inst: Instance, rec: Recorder, user_id: int, repeat: int) -> None:
    a, t, n = sys_approval_task, sys_todo, sys_notification

    def engine() -> dict[str, int]:
        with Session(inst.engine) as session:
            return todos.counts(session, user_id)

    def baseline() -> dict[str, int]:
        statements = (
            select(func.count()).select_from(a).where(a.c.user_id == user_id,
                                                      a.c.status == "active"),
            select(func.count()).select_from(t).where(t.c.user_id == user_id,
                                                      t.c.handled_at.is_(None)),
            select(func.count()).select_from(n).where(n.c.user_id == user_id,
                                                      n.c.read_at.is_(None)))
        with inst.engine.connect() as conn:
            tasks, open_todos, unread = (conn.execute(s).scalar_one() for s in statements)
        return {"approvals": tasks, "todos": tasks + open_todos, "notifications": unread}

    samples = interleaved({"engine": engine, "base": baseline}, repeat=repeat * CHEAP,
                          budget=BUDGET_SECONDS / 2)
    e, b = median(samples["engine"]), median(samples["base"])
    found = engine()
    rec.add("flows", "navigation badges: engine (1 statement)", ms(e), "ms",
            COUNTS_MS_TARGET if inst.dialect == "postgresql" else None, note=str(found),
            key=True)
    rec.add("flows", "navigation badges: baseline (3 statements)", ms(b), "ms")
    rec.add("flows", "navigation badges: engine / baseline", e / b, "x", COUNTS_TARGET)
    rec.check("flows", "navigation badges: engine == baseline", found == baseline())
    plan = explained(inst, rec, "navigation badges", engine)
    indexes = ("ix_sys_approval_task_user", "ix_sys_todo_user", "ix_sys_notification_user")
    missing = [i for i in indexes if i not in plan]
    rec.check("flows", "navigation badges: each count reads its user index", not missing,
              note=", ".join(missing))
