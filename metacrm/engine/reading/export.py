"""Export (导出) of a list: the rows the actor may export, as CSV or Excel.

The rows come through the same list compiler and permission condition as the list page
(operation ``export``), page by page on the keyset cursor, so hidden fields never appear
and a million-row table is never held in memory as records.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from openpyxl import Workbook
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.reading import query
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["FORMATS", "rows", "to_csv", "to_xlsx"]

BATCH = 200
MAX_ROWS = 100_000
FORMATS = ("csv", "xlsx")


def cell(f: FieldDef, row: dict[str, Any], language: str) -> Any:
    """A value as a reader of the file expects it: titles for references, labels for options."""
    value = row.get(f.name)
    if value is None:
        return ""
    if f.kind.references:
        return row.get(f"{f.name}__title") or value
    if f.kind.storage in ("integer", "decimal") and not f.options:
        return value
    return f.kind.display(value, f, language)


def rows(session: Session, registry: Registry, obj: ObjectDef, params: query.ListParams,
         *, actor: Actor, language: str = "zh") -> Iterator[list[Any]]:
    """The header, then one list per record, at most MAX_ROWS."""
    params = query.ListParams(filter=params.filter, sort=params.sort, q=params.q,
                              columns=params.columns, page_size=BATCH, count="none",
                              lookup_titles=True)
    fields: Sequence[FieldDef] | None = None
    sent = 0
    while True:
        page = query.list_records(session, registry, obj, params, actor=actor,
                                  operation="export")
        if fields is None:
            fields = [obj.queryable[c] for c in page.columns if c != "version"]
            yield [f.label.get(language) for f in fields]
        for row in page.items:
            yield [cell(f, row, language) for f in fields]
            sent += 1
            if sent >= MAX_ROWS:
                return
        if not page.next_cursor:
            return
        params.cursor = page.next_cursor


def to_csv(lines: Iterator[list[Any]]) -> Iterator[str]:
    """CSV with a byte-order mark, so Excel opens the Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    for line in lines:
        writer.writerow(line)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def to_xlsx(lines: Iterator[list[Any]], title: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "export")
    for line in lines:
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
