"""Auto-numbers under concurrency, on PostgreSQL: 20 writers at once never share a number.

Each writer has its own Session and connection on one engine. Every writer opens its
transaction first and then waits at a Barrier, so all 20 transactions are open at the
same moment when they start numbering. Which writer wins the sequence row's lock first
varies from run to run; every assertion below holds for every order, so the tests are
deterministic.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine.db import make_engine
from metacrm.engine.writing import records

from conftest import require

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

THREADS = 20
CUSTOMER_CODE = re.compile(r"^(KH-\d{4})-(\d{5})$")
OPPORTUNITY_CODE = re.compile(r"^(SJ-\d{6})-(\d{4})$")
T = TypeVar("T")


@pytest.fixture
def backend() -> str:
    """These tests are about PostgreSQL's row locking: no SQLite run (it has one writer)."""
    require("postgres")
    return "postgres"


@pytest.fixture
def pool(engine: sa.Engine, database_url: str):
    """A second engine on the test's database whose pool holds all 20 writers at once
    (the default pool has 5 + 10 overflow connections, which would queue some of them)."""
    shared = make_engine(database_url, pool_size=THREADS + 5, max_overflow=0, pool_timeout=20)
    yield shared
    shared.dispose()


def run_together(pool: sa.Engine, work: Callable[[Session, int], T]) -> list[T]:
    """``work(session, i)`` in 20 threads, each in its own session and transaction.

    Every thread begins its transaction (a first statement holds a connection) before
    the barrier, so all 20 are open when they are released together. ``work`` commits or
    rolls back itself; an exception in a thread fails the test.
    """
    barrier = threading.Barrier(THREADS, timeout=20)

    def task(i: int) -> T:
        with Session(pool) as session:
            session.execute(sa.text("select 1"))
            barrier.wait()
            return work(session, i)

    with ThreadPoolExecutor(THREADS) as executor:
        futures = [executor.submit(task, i) for i in range(THREADS)]
        return [f.result(timeout=40) for f in futures]


def numbers(codes: list[str], pattern: re.Pattern) -> dict[str, list[int]]:
    """The sequence numbers of the codes, by rendered prefix (a counter per prefix).

    Each code must match the pattern. All codes of a run share one prefix unless the
    year or month turns during it, in which case the counter restarts for the new one.
    """
    by_prefix: dict[str, list[int]] = defaultdict(list)
    for code in codes:
        match = pattern.match(code)
        assert match, f"{code!r} does not match {pattern.pattern}"
        by_prefix[match.group(1)].append(int(match.group(2)))
    return dict(by_prefix)


def stored_codes(pool: sa.Engine, registry, object_name: str) -> list[str]:
    table = registry.table(object_name)
    with pool.connect() as conn:
        return list(conn.execute(sa.select(table.c.code)).scalars())


def test_concurrent_creates_get_distinct_numbers_without_gaps(pool, registry, admin):
    # The counter row does not exist yet, so the 20 upserts also race to insert it.
    def work(session: Session, i: int) -> str:
        code = records.create(session, registry, "customer", {"name": f"Concurrent {i}"},
                              actor=admin)["code"]
        session.commit()
        return code

    codes = run_together(pool, work)

    assert len(set(codes)) == THREADS, sorted(codes)
    assert sorted(stored_codes(pool, registry, "customer")) == sorted(codes)
    # No gaps, not only no duplicates: a transaction that creates one record reserves a
    # block of exactly one number (blocks start at size 1 and grow only within a
    # transaction), and the upsert on the counter row serialises the 20 writers, so
    # committed one-record transactions use the numbers 1..20 exactly, in some order.
    for prefix, seen in numbers(codes, CUSTOMER_CODE).items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), (prefix, sorted(seen))


class Abandoned(Exception):
    """Raised inside a writer's transaction after it created its record."""


def test_rolled_back_creates_never_make_a_committed_number_repeat(pool, registry, admin):
    def work(session: Session, i: int) -> tuple[str, bool]:
        try:
            code = records.create(session, registry, "customer", {"name": f"Maybe {i}"},
                                  actor=admin)["code"]
            if i % 2:
                raise Abandoned(code)
            session.commit()
            return code, True
        except Abandoned:
            session.rollback()
            return code, False

    results = run_together(pool, work)
    committed = [code for code, kept in results if kept]
    assert len(committed) == THREADS // 2
    assert len(set(committed)) == len(committed), sorted(committed)
    assert sorted(stored_codes(pool, registry, "customer")) == sorted(committed)
    # The reservation is part of the transaction (sequences.py): a rollback undoes it with
    # the record, so the numbers of abandoned creates are handed out again and the
    # committed records still number 1..10 without gaps.
    for prefix, seen in numbers(committed, CUSTOMER_CODE).items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), (prefix, sorted(seen))

    with Session(pool) as session:
        later = records.create(session, registry, "customer", {"name": "Later"},
                               actor=admin)["code"]
        session.commit()
    assert later not in committed
    prefix, (number,) = next(iter(numbers([later], CUSTOMER_CODE).items()))
    committed_here = numbers(committed, CUSTOMER_CODE).get(prefix, [])
    assert number > max(committed_here, default=0), (later, sorted(committed))


def test_many_creates_per_transaction_use_the_block_cache_without_repeats(
        pool, registry, admin):
    with Session(pool) as session:
        customer = records.create(session, registry, "customer", {"name": "Buyer"},
                                  actor=admin)["id"]
        session.commit()
    per_transaction = 5

    def work(session: Session, i: int) -> list[str]:
        codes = [records.create(session, registry, "opportunity",
                                {"name": f"Deal {i}.{j}", "customer": customer},
                                actor=admin)["code"]
                 for j in range(per_transaction)]
        session.commit()
        return codes

    results = run_together(pool, work)
    codes = [code for batch in results for code in batch]

    assert len(codes) == THREADS * per_transaction
    assert len(set(codes)) == len(codes), sorted(codes)
    assert sorted(stored_codes(pool, registry, "opportunity")) == sorted(codes)
    # Gaps are allowed here: five creates reserve blocks of 1, 2 and 4 numbers and use 5
    # of the 7. So only distinctness is required, plus: the numbers one transaction hands
    # out rise, and the gaps are bounded by what 20 such transactions can reserve.
    for batch in results:
        for seen in numbers(batch, OPPORTUNITY_CODE).values():
            assert seen == sorted(seen), batch
    for prefix, seen in numbers(codes, OPPORTUNITY_CODE).items():
        assert max(seen) <= THREADS * (1 + 2 + 4), (prefix, sorted(seen))


def test_a_rolled_back_block_is_not_reused_by_the_sessions_next_transaction(
        pool, registry, admin):
    # Each writer's first transaction reserves blocks (1, then 2) and rolls back, which
    # returns those numbers to the other writers; its session's next transaction must not
    # hand out the unused rest of the rolled-back block from the session's cache.
    def work(session: Session, i: int) -> list[str]:
        for j in range(2):
            records.create(session, registry, "customer", {"name": f"Dropped {i}.{j}"},
                           actor=admin)
        session.rollback()
        codes = [records.create(session, registry, "customer", {"name": f"Kept {i}.{j}"},
                                actor=admin)["code"]
                 for j in range(3)]
        session.commit()
        return codes

    codes = [code for batch in run_together(pool, work) for code in batch]

    assert len(codes) == THREADS * 3
    assert len(set(codes)) == len(codes), sorted(codes)
    assert sorted(stored_codes(pool, registry, "customer")) == sorted(codes)
    numbers(codes, CUSTOMER_CODE)  # every code matches the pattern
