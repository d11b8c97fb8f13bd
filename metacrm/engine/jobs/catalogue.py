"""What a job is, when it is due, and the one catalogue of them.

A job function does set-based work (one statement per rule, never a Python loop over
records) and is idempotent: a second run for the same instant changes nothing. A
schedule turns an instant into the run's *slot*: one run per job and slot is what makes
any number of schedulers start each run once. The catalogue is filled once per process
by the wiring (``metacrm.engine.job_catalogue``), like the records service's hooks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from metacrm import clock
from metacrm.metadata.labels import Label
from metacrm.metadata.messages import Message

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from metacrm.engine.schema.registry import Registry

__all__ = ["Daily", "Every", "JobDef", "Schedule", "install", "job", "jobs"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Schedule(Protocol):
    def slot(self, at: dt.datetime) -> tuple[str, dt.datetime]:
        """The latest slot due at ``at`` and the instant it fell due."""

    def next_due(self, at: dt.datetime) -> dt.datetime:
        """The first instant after ``at`` when a new slot falls due."""

    def describe(self) -> Message: ...


@dataclass(frozen=True)
class Daily:
    """Once a day at ``time`` in the instance's zone; the slot is that day's date. A
    missed night is caught up once, by the latest day only."""

    time: dt.time

    def _due_on(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.time, tzinfo=clock.zone()).astimezone(dt.UTC)

    def slot(self, at: dt.datetime) -> tuple[str, dt.datetime]:
        day = at.astimezone(clock.zone()).date()
        if self._due_on(day) > at:
            day -= dt.timedelta(days=1)
        return day.isoformat(), self._due_on(day)

    def next_due(self, at: dt.datetime) -> dt.datetime:
        day = dt.date.fromisoformat(self.slot(at)[0]) + dt.timedelta(days=1)
        return self._due_on(day)

    def describe(self) -> Message:
        return Message("daily at %(time)s", time=self.time.strftime("%H:%M"))


@dataclass(frozen=True)
class Every:
    """Every ``minutes`` minutes; the slot is the instant floored to that step (UTC)."""

    minutes: int

    def slot(self, at: dt.datetime) -> tuple[str, dt.datetime]:
        step = dt.timedelta(minutes=self.minutes)
        due = EPOCH + (at - EPOCH) // step * step
        return due.strftime("%Y-%m-%dT%H:%MZ"), due

    def next_due(self, at: dt.datetime) -> dt.datetime:
        return self.slot(at)[1] + dt.timedelta(minutes=self.minutes)

    def describe(self) -> Message:
        return Message("every %(minutes)s minutes", minutes=self.minutes)


JobRun = Callable[["Session", "Registry", dt.datetime], dict[str, int]]


@dataclass(frozen=True)
class JobDef:
    name: str           # the key in sys_job; never changes once runs are recorded
    label: Label
    schedule: Schedule
    run: JobRun         # (session, registry, at) -> counts such as {"notified": 3}
    # What each fixed key of the counts means, for Admin → Jobs (a reminder rule's key
    # is labelled by the rule itself).
    count_labels: Mapping[str, Label] = field(default_factory=dict)
    # A run still marked running after this long is taken as abandoned (its worker died
    # on another machine); rq stops the run itself at the same limit.
    timeout: dt.timedelta = dt.timedelta(minutes=30)


_CATALOGUE: dict[str, JobDef] = {}


def install(entries: Iterable[JobDef]) -> None:
    """The catalogue, in the wiring's order; installing again replaces it."""
    found: dict[str, JobDef] = {}
    for entry in entries:
        if entry.name in found:
            raise ValueError(f"two jobs are named {entry.name!r}")
        found[entry.name] = entry
    _CATALOGUE.clear()
    _CATALOGUE.update(found)


def jobs() -> list[JobDef]:
    return list(_CATALOGUE.values())


def job(name: str) -> JobDef | None:
    return _CATALOGUE.get(name)
