"""Auto-numbers: a pattern such as ``KH-{yyyy}-{seq:5}`` and a counter that never repeats.

The counter is one row per rendered prefix (so ``{yyyy}{mm}`` patterns restart monthly),
advanced with a single upsert that the database serialises, also under concurrency.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Connection, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from metacrm.engine.systables import sys_sequence

SEQ = re.compile(r"\{seq(?::(\d))?\}")
DATE_TOKENS = {"yyyy": "%Y", "yy": "%y", "mm": "%m", "dd": "%d"}
DATE_TOKEN = re.compile(r"\{(yyyy|yy|mm|dd)\}")


def render_scope(pattern: str, today: dt.date) -> str:
    return DATE_TOKEN.sub(lambda m: today.strftime(DATE_TOKENS[m.group(1)]), pattern)


def _upsert(dialect):
    stmt = dialect.insert(sys_sequence).values(name=bindparam("name"), value=bindparam("count"))
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"value": sys_sequence.c.value + bindparam("count")})
    return stmt.returning(sys_sequence.c.value)


# Built once: constructing the statement costs more than running it.
_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


def allocate(conn: Connection, name: str, count: int = 1) -> int:
    """Reserve ``count`` numbers; returns the last one reserved."""
    return conn.execute(_UPSERT[conn.dialect.name], {"name": name, "count": count}).scalar_one()


def format_number(scope: str, number: int) -> str:
    def seq(match: re.Match) -> str:
        width = int(match.group(1) or 1)
        return str(number).zfill(width)

    return SEQ.sub(seq, scope)


def next_numbers(conn: Connection, key: str, pattern: str, count: int,
                 today: dt.date) -> list[str]:
    scope = render_scope(pattern, today)
    last = allocate(conn, f"{key}:{scope}"[:140], count)
    return [format_number(scope, n) for n in range(last - count + 1, last + 1)]
