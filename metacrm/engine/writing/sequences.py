"""Auto-numbers: a pattern such as ``KH-{yyyy}-{seq:5}`` and a counter that never repeats.

The counter is one row per rendered prefix (so ``{yyyy}{mm}`` patterns restart monthly),
advanced with a single upsert that the database serialises, also under concurrency.

Like a database sequence's CACHE, a transaction reserves numbers in growing blocks
(1, 2, 4 … 64) and hands them out itself, so creating many records one by one costs
one upsert per block, not per record. The reservation is part of the transaction: a
rollback undoes it together with the records, and a commit may leave a gap of unused
numbers, never a number given twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from metacrm.engine.systables import sys_sequence

__all__ = ["next_numbers"]

CACHE_KEY = "metacrm.sequence_blocks"
MAX_BLOCK = 64
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


@dataclass
class _Block:
    next: int
    last: int
    size: int


def next_numbers(session: Session, key: str, pattern: str, count: int,
                 today: dt.date) -> list[str]:
    scope = render_scope(pattern, today)
    name = f"{key}:{scope}"[:140]
    blocks: dict[str, _Block] = session.info.setdefault(CACHE_KEY, {})
    block = blocks.get(name)
    if block is None or block.next + count - 1 > block.last:
        size = max(count, min(MAX_BLOCK, block.size * 2 if block else 1))
        last = allocate(session.connection(), name, size)
        block = blocks[name] = _Block(next=last - size + 1, last=last, size=size)
    first = block.next
    block.next += count
    return [format_number(scope, n) for n in range(first, first + count)]


@event.listens_for(Session, "after_transaction_end")
def _forget_reservations(session: Session, transaction) -> None:
    """Reserved numbers live only as long as the transaction (or savepoint) holding them."""
    session.info.pop(CACHE_KEY, None)
