"""Seeded bench data, bulk-loaded straight into the engine's tables (setup, not measured).

Rows are generated as stored values (what the records service would have written) and
loaded with the driver: sqlite3 ``executemany`` through each column's own bind
processor, PostgreSQL ``COPY``. The tables, types and indexes are the engine's own.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal

from sqlalchemy import JSON, Table, text

from bench.common import Instance

CHUNK = 50_000
STAGES = ("qualify", "needs", "proposal", "negotiation", "won", "lost")
STAGE_WEIGHTS = (25, 20, 15, 10, 15, 15)
WIN_RATE = {"qualify": 10, "needs": 20, "proposal": 50, "negotiation": 80, "won": 100, "lost": 0}
SOURCES = ("referral", "website", "exhibition", "cold_call", "advertising", "other", None)
PRODUCTS = ("software", "hardware", "service")
LEVELS = ("A", "B", "B", "C")
INDUSTRIES = ("it", "manufacturing", "finance", "retail", "education", "healthcare", "other")
PARTS = ("华东", "远航", "星辰", "蓝海", "智造", "恒信", "Apex", "Northwind", "Globex", "Initech")
SYSTEM = ("owner", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted")


def customer_rows(rng: random.Random, count: int, user_id: int, now: dt.datetime,
                  prefix: str = "") -> tuple[list[str], Iterator[tuple]]:
    columns = [*SYSTEM, "business_type", "code", "name", "level", "industry", "source",
               "deal_status", "phone", "employees", "annual_revenue", "locked"]

    def rows() -> Iterator[tuple]:
        for i in range(1, count + 1):
            stamp = now - dt.timedelta(minutes=i)
            yield (user_id, stamp, user_id, stamp, user_id, 1, False, "standard",
                   f"KH-{stamp.year}-{i:07d}", customer_name(rng, i, prefix),
                   rng.choice(LEVELS), rng.choice(INDUSTRIES), rng.choice(SOURCES), "open",
                   f"13{rng.randint(0, 999_999_999):09d}", rng.randint(1, 5000),
                   Decimal(rng.randint(0, 10**9)) / 100, False)

    return columns, rows()


def customer_name(rng: random.Random, i: int, prefix: str = "") -> str:
    return f"{prefix}{rng.choice(PARTS)}{rng.choice(PARTS)}有限公司 {i:07d}"


def contact_rows(rng: random.Random, count: int, user_id: int,
                 now: dt.datetime) -> tuple[list[str], Iterator[tuple]]:
    columns = [*SYSTEM, "name", "customer", "mobile", "primary_contact"]

    def rows() -> Iterator[tuple]:
        for i in range(1, count + 1):
            stamp = now - dt.timedelta(minutes=i)
            yield (user_id, stamp, user_id, stamp, user_id, 1, False, f"联系人 {i:07d}", i,
                   f"15{rng.randint(0, 999_999_999):09d}", True)

    return columns, rows()


def opportunity_rows(rng: random.Random, count: int, customers: int, contacts: int,
                     user_id: int, now: dt.datetime) -> tuple[list[str], Iterator[tuple]]:
    columns = [*SYSTEM, "deleted_at", "deleted_by", "code", "name", "customer", "contact",
               "amount", "close_date", "stage", "win_rate", "source", "products", "remark"]
    today = now.date()

    def rows() -> Iterator[tuple]:
        choices, randint, random_ = rng.choices, rng.randint, rng.random
        for i in range(1, count + 1):
            stamp = now - dt.timedelta(seconds=30 * i)
            stage = choices(STAGES, STAGE_WEIGHTS)[0]
            deleted = random_() < 0.01
            amount = None if random_() < 0.02 else Decimal(randint(0, 10_000_000)) / 100
            yield (user_id, stamp, user_id, stamp, user_id, 1, deleted,
                   stamp if deleted else None, user_id if deleted else None,
                   f"SJ-{stamp:%Y%m}-{i:07d}", f"{rng.choice(PARTS)}项目 {i:07d}",
                   randint(1, customers), randint(1, contacts) if random_() < 0.3 else None,
                   amount, today + dt.timedelta(days=randint(-365, 365)), stage,
                   Decimal(WIN_RATE[stage]), rng.choice(SOURCES),
                   rng.sample(PRODUCTS, randint(1, 2)), "需要报价" if random_() < 0.2 else None)

    return columns, rows()


def _chunks(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_load(inst: Instance, table: Table, columns: Sequence[str],
              rows: Iterator[tuple]) -> None:
    """Load rows as fast as the driver allows, converting values as Core would."""
    if inst.dialect == "postgresql":
        _copy(inst, table, columns, rows)
    else:
        _executemany(inst, table, columns, rows)


def _executemany(inst: Instance, table: Table, columns: Sequence[str],
                 rows: Iterator[tuple]) -> None:
    dialect = inst.engine.dialect
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    converters = [(i, p) for i, p in enumerate(processors) if p is not None]
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES " \
          f"({', '.join('?' * len(columns))})"
    with inst.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MB while loading
        cursor = conn.connection.driver_connection.cursor()
        for chunk in _chunks(rows, CHUNK):
            converted = []
            for row in chunk:
                values = list(row)
                for i, process in converters:
                    if values[i] is not None:
                        values[i] = process(values[i])
                converted.append(values)
            cursor.executemany(sql, converted)
        conn.exec_driver_sql("PRAGMA cache_size=-2000")


def _copy(inst: Instance, table: Table, columns: Sequence[str], rows: Iterator[tuple]) -> None:
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    with inst.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        if row[i] is not None:
                            row[i] = json.dumps(row[i], ensure_ascii=False)
                copy.write_row(row)


def populate(inst: Instance, size: int, seed: int = 42) -> dict[str, int]:
    """``size`` opportunities, a tenth as many customers and as many contacts."""
    rng = random.Random(seed)
    registry = inst.registry()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    customers = max(100, size // 10)
    user_id = inst.actor.user_id
    counts = {"customer": customers, "contact": customers, "opportunity": size}
    bulk_load(inst, registry.table("customer"), *customer_rows(rng, customers, user_id, now))
    bulk_load(inst, registry.table("contact"), *contact_rows(rng, customers, user_id, now))
    bulk_load(inst, registry.table("opportunity"),
              *opportunity_rows(rng, size, customers, customers, user_id, now))
    inst.counts = counts
    return counts


def analyze(inst: Instance) -> None:
    """Planner statistics and (PostgreSQL) visibility maps, as a maintained database has
    them (autovacuum; PRAGMA optimize): a bulk-loaded table has neither."""
    if inst.dialect == "postgresql":
        with inst.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with inst.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
