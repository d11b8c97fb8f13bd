"""Benchmark 1: a filtered, sorted list page of 50 rows, engine against the same SQL in Core.

The engine call is ``query.list_records`` with the default (capped) count; the baseline
writes out the same SELECT (same WHERE, ORDER BY, LIMIT/OFFSET) and the same capped
count subquery by hand. Page 100 is reached through the engine's cursor chain.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, and_, func, literal, select, tuple_
from sqlalchemy.orm import Session

from bench.common import Instance, StatementLog, interleaved, median, ms
from bench.report import Recorder
from metacrm.engine.actor import SYSTEM
from metacrm.engine.reading import query
from metacrm.engine.schema.registry import Registry

OPEN_STAGES = ("qualify", "needs", "proposal", "negotiation")
MIN_AMOUNT = 10000  # with OPEN_STAGES ~62% of rows match: page 100 exists at 10k
FILTER = [["stage", "in", list(OPEN_STAGES)], ["amount", "gt", MIN_AMOUNT]]
SORT = "-amount"
PAGE_SIZE = 50
DEEP_PAGE = 100
COLUMNS = ("code", "name", "customer", "amount", "stage", "close_date", "owner")
BUDGET_SECONDS = 20.0


def list_params(**overrides: Any) -> query.ListParams:
    return query.ListParams(filter=FILTER, sort=SORT, page_size=PAGE_SIZE, columns=list(COLUMNS),
                            **overrides)


def engine_page(inst: Instance, registry: Registry, **overrides: Any) -> query.Page:
    with Session(inst.engine) as session:
        return query.list_records(session, registry, "opportunity", list_params(**overrides),
                                  actor=SYSTEM)


class Baseline:
    """The engine's list SQL for this one list, hand-written in Core."""

    def __init__(self, table: Table, dialect: str):
        self.t = table
        self.nulls_high = dialect == "postgresql"

    def where(self):
        t = self.t
        return and_(t.c.deleted.is_(False), t.c.stage.in_(OPEN_STAGES),
                    t.c.amount > Decimal(MIN_AMOUNT).quantize(Decimal("0.01")))

    def after(self, amount: Decimal, row_id: int) -> list:
        """Rows after (amount, id) in ``amount DESC, id DESC``, as the engine reads them:
        a row-value range on the (amount, id) index, then (SQLite, where NULLs sort last
        in DESC) the NULL run, read only if the range did not fill the page."""
        t = self.t
        bound = tuple_(t.c.amount, t.c.id) < tuple_(literal(amount, t.c.amount.type),
                                                     literal(row_id, t.c.id.type))
        return [bound] if self.nulls_high else [bound, t.c.amount.is_(None)]

    def page(self, conn: Connection, after: tuple | None = None,
             offset: int = 0) -> tuple[list[dict], int]:
        t = self.t
        stmt = select(t.c.id, t.c.version, *(t.c[c] for c in COLUMNS)).where(self.where())
        stmt = stmt.order_by(t.c.amount.desc(), t.c.id.desc())
        rows: list[dict] = []
        if after:
            for segment in self.after(*after):
                rows.extend(dict(r._mapping) for r in conn.execute(
                    stmt.where(segment).limit(PAGE_SIZE + 1 - len(rows))))
                if len(rows) > PAGE_SIZE:
                    break
        else:
            stmt = stmt.limit(PAGE_SIZE + 1)
            rows = [dict(r._mapping) for r in conn.execute(stmt.offset(offset) if offset
                                                           else stmt)]
        capped = select(t.c.id).where(self.where()).limit(query.COUNT_CAP + 1).subquery()
        total = conn.execute(select(func.count()).select_from(capped)).scalar_one()
        return rows[:PAGE_SIZE], min(total, query.COUNT_CAP)


def walk_cursor(inst: Instance, registry: Registry, pages: int) -> str:
    """The cursor of page ``pages + 1``, following next_cursor from page 1."""
    cursor = engine_page(inst, registry).next_cursor
    for _ in range(pages - 1):
        cursor = engine_page(inst, registry, cursor=cursor).next_cursor
    assert cursor, "not enough rows for the deep page"
    return cursor


def fresh_statistics(inst: Instance, rec: Recorder) -> None:
    """Page 1 before ANALYZE: what a freshly loaded database plans (information)."""
    registry = inst.registry()
    samples = interleaved({"engine": lambda: engine_page(inst, registry)}, repeat=3, warmup=1)
    rec.add("list", "page 1 engine, before ANALYZE", ms(median(samples["engine"])), "ms",
            note="information", key=True)


def run(inst: Instance, rec: Recorder, repeat: int) -> float:
    """Records the list measurements; returns the engine's page-1 median in seconds."""
    registry = inst.registry()
    base = Baseline(registry.table("opportunity"), inst.dialect)
    deep_offset = (DEEP_PAGE - 1) * PAGE_SIZE
    cursor = walk_cursor(inst, registry, DEEP_PAGE - 1)
    with inst.engine.connect() as conn:
        last = base.page(conn, offset=deep_offset - PAGE_SIZE)[0][-1]
    after = (last["amount"], last["id"])

    def baseline(**kw):
        with inst.engine.connect() as conn:
            return base.page(conn, **kw)

    samples = interleaved({
        "p1 engine": lambda: engine_page(inst, registry),
        "p1 base": lambda: baseline(),
        "deep engine": lambda: engine_page(inst, registry, cursor=cursor),
        "deep base": lambda: baseline(after=after),
        "offset engine": lambda: engine_page(inst, registry, page=DEEP_PAGE),
        "offset base": lambda: baseline(offset=deep_offset),
    }, repeat=repeat, budget=BUDGET_SECONDS)
    t = {name: median(values) for name, values in samples.items()}
    rec.add("list", "page 1 engine", ms(t["p1 engine"]), "ms", key=True)
    rec.add("list", "page 1 baseline", ms(t["p1 base"]), "ms")
    rec.add("list", "page 1 engine/baseline", t["p1 engine"] / t["p1 base"], "x", "<= 1.5")
    rec.add("list", f"page {DEEP_PAGE} keyset engine", ms(t["deep engine"]), "ms")
    rec.add("list", f"page {DEEP_PAGE} keyset baseline", ms(t["deep base"]), "ms")
    rec.add("list", f"page {DEEP_PAGE} keyset engine/baseline",
            t["deep engine"] / t["deep base"], "x", "<= 1.5")
    rec.add("list", f"page {DEEP_PAGE} keyset / page 1 (engine)",
            t["deep engine"] / t["p1 engine"], "x", "<= 2")
    rec.add("list", f"page {DEEP_PAGE} OFFSET engine", ms(t["offset engine"]), "ms",
            note="information")
    rec.add("list", f"page {DEEP_PAGE} OFFSET baseline", ms(t["offset base"]), "ms",
            note="information")
    rec.add("list", f"page {DEEP_PAGE} OFFSET / page 1 (engine)",
            t["offset engine"] / t["p1 engine"], "x", note="information", key=True)
    _checks(inst, registry, base, rec, cursor, after, deep_offset)
    return t["p1 engine"]


def _checks(inst: Instance, registry: Registry, base: Baseline, rec: Recorder, cursor: str,
            after: tuple, deep_offset: int) -> None:
    """Statements per call, capped count, same SQL as the baseline, same deep page."""
    log = StatementLog(inst.engine)
    try:
        with log.record() as engine_p1:
            engine_page(inst, registry)
        with log.record() as engine_deep:
            deep = engine_page(inst, registry, cursor=cursor)
        with log.record() as base_sql, inst.engine.connect() as conn:
            base.page(conn)
            base.page(conn, after=after)
    finally:
        log.close()
    rec.add("list", "statements per list call (engine, page 1)", len(engine_p1), "stmts",
            "<= 2", note="+1 auth lookup over HTTP")
    rec.add("list", f"statements per list call (engine, page {DEEP_PAGE})", len(engine_deep),
            "stmts", "<= 2")
    counts = [s for s in engine_p1 + engine_deep if "count(" in s.lower()]
    rec.check("list", "default count is capped (LIMIT in count SQL)",
              query.ListParams().count == "capped" and bool(counts)
              and all("LIMIT" in s.upper() for s in counts))
    rec.check("list", "engine SQL == baseline SQL (page 1, keyset)",
              engine_p1 + engine_deep == base_sql)
    with inst.engine.connect() as conn:
        by_offset = base.page(conn, offset=deep_offset)[0]
    rec.check("list", f"keyset page {DEEP_PAGE} == OFFSET page {DEEP_PAGE}",
              [r["id"] for r in deep.items] == [r["id"] for r in by_offset])
