"""One clock for every time rule: the real time, or the time a demo or a test sets, and
the instance's time zone, where "today" and "tonight" are.

``METACRM_NOW`` (an ISO date-time; without an offset it is read in the instance's zone)
starts the clock at that instant, and it runs on from there: a demo can live on a fixed
day without every timestamp being equal. ``METACRM_TIMEZONE`` (an IANA name such as
``Asia/Shanghai``) is the instance's zone, the machine's without it. Tests freeze the
clock with ``frozen``. A leaf module: every layer may read it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

from dateutil import parser as dateutil_parser
from dateutil import tz as dateutil_tz

__all__ = ["frozen", "now", "reset", "today", "zone"]

_state: dict[str, object] = {}


def zone() -> dt.tzinfo:
    """The instance's time zone."""
    found = _state.get("zone")
    if found is None:
        name = os.environ.get("METACRM_TIMEZONE")
        found = dateutil_tz.gettz(name) if name else dateutil_tz.tzlocal()
        if found is None:
            raise ValueError(f"METACRM_TIMEZONE: {name!r} is not a time zone name")
        _state["zone"] = found
    assert isinstance(found, dt.tzinfo)
    return found


def _offset() -> dt.timedelta:
    found = _state.get("offset")
    if found is None:
        raw = os.environ.get("METACRM_NOW")
        found = _parse(raw) - dt.datetime.now(dt.UTC) if raw else dt.timedelta(0)
        _state["offset"] = found
    assert isinstance(found, dt.timedelta)
    return found


def _parse(raw: str) -> dt.datetime:
    try:
        value = dateutil_parser.isoparse(raw)
    except ValueError:
        raise ValueError(f"METACRM_NOW: {raw!r} is not an ISO date-time "
                         "(e.g. 2026-03-01T09:00)") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone())).astimezone(dt.UTC)


def now() -> dt.datetime:
    """The current instant, in UTC."""
    fixed = _state.get("frozen")
    if isinstance(fixed, dt.datetime):
        return fixed
    return dt.datetime.now(dt.UTC) + _offset()


def today() -> dt.date:
    """Today in the instance's time zone."""
    return now().astimezone(zone()).date()


def reset() -> None:
    """Forget what was read from the environment (a test that changes it)."""
    _state.clear()


@contextmanager
def frozen(at: dt.datetime | str) -> Iterator[dt.datetime]:
    """The clock stands at ``at`` (naive: in the instance's zone) until the block ends."""
    instant = _parse(at) if isinstance(at, str) else (
        at if at.tzinfo else at.replace(tzinfo=zone())).astimezone(dt.UTC)
    before = _state.get("frozen")
    _state["frozen"] = instant
    try:
        yield instant
    finally:
        if before is None:
            _state.pop("frozen", None)
        else:
            _state["frozen"] = before
