"""One clock: METACRM_NOW starts it at a chosen instant, METACRM_TIMEZONE says where
"today" is, and a test freezes it; every time the engine writes reads it."""

from __future__ import annotations

import datetime as dt

import pytest

from metacrm import clock
from metacrm.engine.writing import records
from metacrm.metadata.expressions import compile_expression


@pytest.fixture
def environment(monkeypatch):
    """Set the clock's variables; the clock forgets them afterwards."""
    def set_(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        clock.reset()

    yield set_
    monkeypatch.undo()
    clock.reset()


def test_metacrm_now_starts_the_clock_at_that_instant_and_it_runs_on(environment):
    environment(METACRM_NOW="2026-03-01T09:00:00+08:00")
    first = clock.now()
    assert abs(first - dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC)) < dt.timedelta(seconds=5)
    assert clock.now() >= first


def test_a_naive_metacrm_now_is_read_in_the_instance_zone(environment):
    environment(METACRM_NOW="2026-03-01T00:30", METACRM_TIMEZONE="Asia/Shanghai")
    assert clock.today() == dt.date(2026, 3, 1)
    assert clock.now().date() == dt.date(2026, 2, 28)  # 16:30 UTC the day before


def test_today_is_the_date_in_the_instance_zone(environment):
    environment(METACRM_TIMEZONE="Asia/Shanghai")
    with clock.frozen(dt.datetime(2026, 5, 31, 17, 0, tzinfo=dt.UTC)):
        assert clock.today() == dt.date(2026, 6, 1)
    environment(METACRM_TIMEZONE="America/New_York")
    with clock.frozen(dt.datetime(2026, 5, 31, 17, 0, tzinfo=dt.UTC)):
        assert clock.today() == dt.date(2026, 5, 31)


@pytest.mark.parametrize("name, value", [("METACRM_NOW", "next tuesday"),
                                         ("METACRM_TIMEZONE", "Mars/Olympus")])
def test_a_wrong_setting_names_itself(environment, name, value):
    environment(**{name: value})
    with pytest.raises(ValueError, match=name):
        clock.today()


def test_a_record_is_stamped_with_the_frozen_time(session, registry, admin):
    with clock.frozen("2026-01-15T10:00:00+08:00") as at:
        row = records.create(session, registry, "customer", {"name": "时钟测试有限公司"},
                             actor=admin)
    assert row["created_at"] == at == dt.datetime(2026, 1, 15, 2, tzinfo=dt.UTC)


def test_the_expression_language_reads_the_clock():
    with clock.frozen("2026-02-10T12:00:00+00:00") as at:
        assert compile_expression("today()", {}).evaluate({}) == clock.today()
        assert compile_expression("now()", {}).evaluate({}) == at
