"""Benchmark: creating quotes with their lines through the records service.

Each quote is sent the way an import or the API would send it, its ``lines`` inline;
the service creates the quote_line children in the same transaction and computes what
the metadata asks for: each line's ``amount`` formula and ``product_name`` (a lookup's
field), the quote's roll-ups (``line_count``, ``total``), its formulas
(``total_with_tax``, ``customer_level`` through the customer lookup), its default dates
(``today()``, ``add_days``), its auto-number code, the reference checks and the audit
log. The baseline inserts the very rows the service stored (the quotes from its return
value, with their ids and precomputed totals; the lines read back, with their amounts)
with a plain Core executemany, the quotes then their lines, one transaction per batch
of the same size. Each side runs three times, alternated, and the medians are compared;
every service run is checked on a sample quote read back from the database.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bench.common import Instance, clear, create_batched, median, timed
from bench.report import Recorder
from bench.seed import LEVELS, PARTS, customer_name
from metacrm.engine.writing import records

BATCH = 500  # quotes per create_many call and per transaction (5,500 rows with lines)
LINES = 10
CUSTOMERS = 20
PRODUCTS = 50
DISCOUNTS = (0, 0, 0, 5, 10, 12.5, 20)
CLEARED = ("o_quote_line", "o_quote", "sys_audit")
CENT = Decimal("0.01")
REPEAT = 3  # each side this many times, alternated (a shared machine is noisy)


def seed_references(inst: Instance, seed: int = 11) -> tuple[list[int], list[int]]:
    """A few customers and products, through the service (setup, not measured)."""
    rng = random.Random(seed)
    registry = inst.registry()
    with Session(inst.engine) as session, session.begin():
        customers = records.create_many(
            session, registry, "customer",
            [{"name": customer_name(rng, i, "报价客户 "), "level": rng.choice(LEVELS)}
             for i in range(1, CUSTOMERS + 1)], actor=inst.actor)
        products = records.create_many(
            session, registry, "product",
            [{"name": f"{rng.choice(PARTS)} 产品 {i:03d}",
              "category": rng.choice(("software", "hardware", "service")),
              "price": f"{rng.randint(100, 2_000_000) / 100:.2f}"}
             for i in range(1, PRODUCTS + 1)], actor=inst.actor)
    return [c["id"] for c in customers], [p["id"] for p in products]


def inputs(count: int, customers: list[int], products: list[int],
           seed: int = 7) -> list[dict[str, Any]]:
    """Values as an import or the API would send them (strings and numbers)."""
    rng = random.Random(seed)
    out = []
    for i in range(1, count + 1):
        lines = [{"product": rng.choice(products), "quantity": rng.randint(1, 50),
                  "unit_price": f"{rng.randint(100, 2_000_000) / 100:.2f}",
                  "discount": rng.choice(DISCOUNTS)} for _ in range(LINES)]
        values = {"name": f"报价单 {i:07d}", "customer": rng.choice(customers),
                  "lines": lines}
        if rng.random() < 0.3:
            values["remark"] = "批量导入"
        out.append(values)
    return out


def stored_lines(inst: Instance) -> dict[int, list[dict]]:
    """The lines as the service stored them, by quote id (without their own ids)."""
    table = inst.registry().table("quote_line")
    found: dict[int, list[dict]] = {}
    with inst.engine.connect() as conn:
        for row in conn.execute(select(table).order_by(table.c.id)):
            line = {k: v for k, v in row._mapping.items() if k != "id"}
            found.setdefault(line["quote"], []).append(line)
    return found


def core_executemany(inst: Instance, quotes: list[dict], lines: dict[int, list[dict]]) -> None:
    """The same rows with plain executemany: the quotes (with the ids the lines point
    at), then their lines, one transaction per batch."""
    registry = inst.registry()
    add_quotes = insert(registry.table("quote"))
    add_lines = insert(registry.table("quote_line"))
    for start in range(0, len(quotes), BATCH):
        chunk = quotes[start:start + BATCH]
        with inst.engine.begin() as conn:
            conn.execute(add_quotes, chunk)
            conn.execute(add_lines, [line for q in chunk for line in lines[q["id"]]])


def counts(inst: Instance) -> tuple[int, int]:
    registry = inst.registry()
    with inst.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(registry.table(name)))
                     .scalar_one() for name in ("quote", "quote_line"))


def check_sample(inst: Instance, quote_id: int) -> list[str]:
    """What is wrong with one stored quote and its lines, read back from the database
    (nothing: the service did all the work it is timed for)."""
    registry = inst.registry()
    q, ql = registry.table("quote"), registry.table("quote_line")
    c, p = registry.table("customer"), registry.table("product")
    problems = []
    with inst.engine.connect() as conn:
        quote = conn.execute(select(q).where(q.c.id == quote_id)).one()._mapping
        lines = [r._mapping for r in conn.execute(
            select(ql, p.c.name.label("_product")).join(p, p.c.id == ql.c.product)
            .where(ql.c.quote == quote_id).order_by(ql.c.id))]
        level = conn.execute(select(c.c.level).where(c.c.id == quote["customer"])).scalar_one()
    if len(lines) != LINES or quote["line_count"] != LINES:
        problems.append(f"{len(lines)} lines stored, line_count {quote['line_count']}")
    for line in lines:
        amount = (line["quantity"] * line["unit_price"]
                  * (1 - line["discount"] / 100)).quantize(CENT, ROUND_HALF_UP)
        if line["amount"] != amount:
            problems.append(f"line {line['id']}: amount {line['amount']} != {amount}")
        if line["product_name"] != line["_product"]:
            problems.append(f"line {line['id']}: product_name {line['product_name']!r}")
    total = sum((line["amount"] for line in lines), Decimal(0))
    if quote["total"] != total:
        problems.append(f"total {quote['total']} != sum of line amounts {total}")
    with_tax = (total * (1 + quote["tax_rate"] / 100)).quantize(CENT, ROUND_HALF_UP)
    if quote["total_with_tax"] != with_tax:
        problems.append(f"total_with_tax {quote['total_with_tax']} != {with_tax}")
    if quote["customer_level"] != level:
        problems.append(f"customer_level {quote['customer_level']!r} != {level!r}")
    today = dt.date.today()
    if quote["quote_date"] != today or quote["valid_until"] != today + dt.timedelta(days=30):
        problems.append(f"dates {quote['quote_date']} / {quote['valid_until']}")
    if not quote["code"]:
        problems.append("no auto-number code")
    return problems


def measure_once(inst: Instance, values: list[dict], count: int
                 ) -> tuple[float, float, list[str], tuple[int, int]]:
    """One timed service run, checked, then the baseline on the rows it stored."""
    clear(inst, CLEARED)
    stored: list[dict] = []
    many = timed(lambda: stored.extend(create_batched(inst, "quote", values, BATCH)))
    problems = check_sample(inst, stored[len(stored) // 2]["id"])
    written = counts(inst)
    if written != (count, count * LINES):
        problems.append(f"{written[0]:,} quotes and {written[1]:,} lines stored")
    lines = stored_lines(inst)
    clear(inst, CLEARED)
    core = timed(lambda: core_executemany(inst, stored, lines))
    core_written = counts(inst)
    clear(inst, CLEARED)
    return many, core, problems, core_written


def run(inst: Instance, rec: Recorder, count: int) -> None:
    customers, products = seed_references(inst)
    values = inputs(count, customers, products)
    rows = count * (1 + LINES)
    many_times, core_times, problems = [], [], []
    core_written = (0, 0)
    for _ in range(REPEAT):
        many, core, found, core_written = measure_once(inst, values, count)
        many_times.append(many)
        core_times.append(core)
        problems.extend(p for p in found if p not in problems)
    many, core = median(many_times), median(core_times)
    spread = f"{min(many_times) / max(core_times):.2f}-{max(many_times) / min(core_times):.2f}"
    rec.check("lines", "create_many stored the computed values", not problems,
              note="; ".join(problems)[:200] or "sample quote: total = sum of its lines")
    rec.check("lines", "baseline stored the same rows", core_written == (count, count * LINES),
              note=f"{core_written[0]:,} quotes, {core_written[1]:,} lines")
    rec.add("lines", f"create_many {count:,} quotes of {LINES} lines", rows / many, "rows/s",
            note=f"{count / many:,.0f} quotes/s, batches of {BATCH}, median of {REPEAT}",
            key=True)
    rec.add("lines", f"Core executemany, the same {rows:,} rows", rows / core, "rows/s",
            note=f"{count / core:,.0f} quotes/s, batches of {BATCH}, median of {REPEAT}")
    rec.add("lines", "create_many / Core executemany (time)", many / core, "x", "<= 4",
            note=f"medians; extremes of the runs {spread}")
