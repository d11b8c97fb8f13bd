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
from openpyxl.cell import WriteOnlyCell
from sqlalchemy.orm import Session

from metacrm.engine.actor import Actor
from metacrm.engine.reading import query
from metacrm.engine.schema.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["FORMATS", "inert", "rows", "to_csv", "to_xlsx"]

BATCH = 200
MAX_ROWS = 100_000
FORMATS = ("csv", "xlsx")
# A text starting with one of these is a formula to a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def inert(value: Any) -> Any:
    """Text a spreadsheet shows as text: a leading quote before what would start a formula
    (``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell(f: FieldDef, row: dict[str, Any], language: str) -> Any:
    """A value as a reader of the file expects it: titles for references, labels for options,
    never a live formula."""
    value = row.get(f.name)
    if value is None:
        return ""
    if f.kind.references:
        return inert(row.get(f"{f.name}__title") or value)
    if f.kind.storage in ("integer", "decimal") and not f.options:
        return value
    return inert(f.kind.display(value, f, language))


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
            yield [inert(f.label.get(language)) for f in fields]
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
    """A workbook whose text cells are text cells: nothing in it is run as a formula."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "export")
    for line in lines:
        sheet.append([_text_cell(sheet, v) if isinstance(v, str) else v for v in line])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_cell(sheet: Any, value: str) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # openpyxl would take a text starting with "=" for a formula
    return cell
