"""The recycle bin pages through every deleted record, newest deletion first, like the
list page: 50 to a page, a next link that follows the query engine's cursor. Over HTTP on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re

from sqlalchemy import update
from sqlalchemy.orm import Session

from metacrm.engine.writing import records


def bin_names(page: str) -> list[str]:
    table = page[page.index('id="recycle-bin"'):page.index("</table>")]
    return re.findall(r'<td class="text-break">(.*?)</td>', table)


def next_link(page: str) -> str | None:
    item = re.search(r'<li class="page-item ?(disabled)?"><a class="page-link" id="next-page" '
                     r'href="(.*?)"', page)
    assert item is not None
    return None if item.group(1) else html_lib.unescape(item.group(2))


def test_sixty_deleted_records_are_shown_fifty_then_ten_newest_first(web, make_record, engine,
                                                                     registry, admin):
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    table = registry.table("customer")
    ids = [make_record("customer", name=f"Binned {n:02d}")["id"] for n in range(60)]
    with Session(engine) as session, session.begin():
        for n, record_id in enumerate(ids):
            records.delete(session, registry, "customer", record_id, actor=admin)
            session.execute(update(table).where(table.c.id == record_id)
                            .values(deleted_at=base + dt.timedelta(minutes=n)))

    first = web.text("/o/customer/recycle-bin")
    assert bin_names(first) == [f"Binned {n:02d}" for n in range(59, 9, -1)]
    assert "下一页" in first and "上一页" in first
    second_url = next_link(first)
    assert second_url is not None and "cursor=" in second_url

    second = web.text(second_url)
    assert bin_names(second) == [f"Binned {n:02d}" for n in range(9, -1, -1)]
    assert next_link(second) is None
