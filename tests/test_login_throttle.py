"""The failed sign-in counter behind the login throttle, in the database: each failure
counts once, even at the same instant from several web processes, and a count left alone
longer than FORGET_AFTER starts again. On SQLite and PostgreSQL (the race on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access import login_throttle
from metacrm.engine.systables import sys_login_failure

RACERS = 8
KEY = login_throttle.key_for("admin", "203.0.113.7")


def failures(engine: sa.Engine, key: str = KEY) -> int:
    with Session(engine) as session:
        return session.execute(select(sys_login_failure.c.failures)
                               .where(sys_login_failure.c.key == key)).scalar_one()


def fail_at_once(engine: sa.Engine, count: int) -> None:
    """``count`` failed sign-ins of KEY, each in a thread with its own session and
    connection, all released at once; each commits."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def fail() -> None:
        with Session(engine) as session:
            session.connection()  # the connection is checked out before the start
            try:
                barrier.wait(timeout=10)
                login_throttle.record_failure(session, KEY)
                session.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    assert errors == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_failed_sign_ins_at_the_same_instant_each_count(bare_engine):
    fail_at_once(bare_engine, RACERS)  # the first failures of the key: all insert
    assert failures(bare_engine) == RACERS
    fail_at_once(bare_engine, RACERS)  # the row is there: all add one
    assert failures(bare_engine) == 2 * RACERS


def test_each_failed_sign_in_adds_one_to_its_key_only(bare_engine):
    other = login_throttle.key_for("admin", "198.51.100.1")
    with Session(bare_engine) as session, session.begin():
        for _ in range(3):
            login_throttle.record_failure(session, KEY)
        login_throttle.record_failure(session, other)
    assert (failures(bare_engine), failures(bare_engine, other)) == (3, 1)


def test_a_count_left_alone_past_forget_after_starts_again_at_one(bare_engine):
    long_ago = clock.now() - login_throttle.FORGET_AFTER - dt.timedelta(minutes=1)
    with Session(bare_engine) as session, session.begin():
        session.execute(sa.insert(sys_login_failure).values(key=KEY, failures=9,
                                                            last_at=long_ago))
        login_throttle.record_failure(session, KEY)
    assert failures(bare_engine) == 1
    with Session(bare_engine) as session:
        last_at = session.execute(select(sys_login_failure.c.last_at)).scalar_one()
    assert clock.now() - last_at < dt.timedelta(minutes=1)
