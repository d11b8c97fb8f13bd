"""Cells: how a field's value shows on a page, decided in Python before rendering.

Django admin's ``display_for_field``: the field-type catalogue says how a value reads
(its ``display``), whether it links, shows as a badge or keeps its line breaks; a page's
``Style`` says which of those it uses. Templates draw a ``Cell`` with one macro
(templates/macros/cells.html) and never branch on a field's type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import url_for
from flask_babel import gettext as _

from metacrm.metadata.model import FieldDef, ObjectDef
from metacrm.ui.i18n import language
from metacrm.ui.records.widgets import display


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    badge: str | None = None  # an option shown as a badge: its colour, "" for none
    numeric: bool = False  # right-aligned, on one line
    multiline: bool = False  # long text keeps its line breaks
    external: bool = False  # a web address: a new tab, without the opener
    css: str = ""  # the link's class


@dataclass(frozen=True)
class Style:
    """What a page shows of what the catalogue offers."""

    empty: str = "—"
    record_links: bool = True  # a lookup links to the record it names
    web_links: bool = True  # web and mail addresses are links
    badges: bool = False  # options as coloured badges
    multiline: bool = True


DETAIL = Style()
LIST = Style(empty="", web_links=False, badges=True, multiline=False)
APPROVAL = Style(record_links=False, web_links=False)  # the approver may not read the records

# Where each kind of link in the catalogue goes, and whether it leaves the site.
LINKS: dict[str, tuple[str, bool]] = {"web": ("{}", True), "mail": ("mailto:{}", False)}


def cell(f: FieldDef, value: Any, title: str | None, lang: str, style: Style = DETAIL) -> Cell:
    """``title``: what a reference's id is called (a record's title, a user's name)."""
    kind = f.kind
    if kind.references and value:
        if title is None and kind.references == "target" and isinstance(value, int):
            # out of the reader's scope: the query joined no title, and the link would 404
            return Cell(_("(record %(id)d)", id=value))
        href = url_for("pages.detail", object_name=f.target, record_id=value) \
            if style.record_links and kind.references == "target" else None
        return Cell(str(title or value), href=href)
    text = display(f, value, lang)
    if kind.link and value and style.web_links:
        pattern, external = LINKS[kind.link]
        return Cell(text, href=pattern.format(value), external=external)
    if kind.badge and value and style.badges:
        option = f.option(value)
        return Cell(text, badge=(option.color or "") if option else "")
    return Cell(text or style.empty, numeric=kind.numeric,
                multiline=kind.multiline and style.multiline)


def row_cells(fields: Iterable[FieldDef], row: Mapping[str, Any], lang: str,
              style: Style = DETAIL) -> list[Cell]:
    """A record's cells for ``fields``; its references' titles are ``<field>__title``."""
    return [cell(f, row.get(f.name), row.get(f"{f.name}__title"), lang, style) for f in fields]


def labelled_cells(fields: Iterable[FieldDef], row: Mapping[str, Any], lang: str,
                   style: Style = DETAIL) -> list[tuple[FieldDef, Cell]]:
    fields = list(fields)
    return list(zip(fields, row_cells(fields, row, lang, style), strict=True))


def title_cell(f: FieldDef, value: Any, href: str) -> Cell:
    """A list's first link, to the record itself."""
    return Cell("—" if value is None else str(value), href=href, numeric=f.kind.numeric,
                css="record-link")


def list_rows(obj: ObjectDef, fields: list[FieldDef], rows: Iterable[Mapping[str, Any]],
              args: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], list[Cell]]]:
    """A list page's records with their cells; the title links to the record with the
    list's ``args``, so its detail page offers the list's previous and next."""
    lang = language()
    return [(row, [
        title_cell(f, row.get(f.name), url_for(
            "pages.detail", object_name=obj.name, record_id=row["id"], **args))
        if f.name == obj.title_field
        else cell(f, row.get(f.name), row.get(f"{f.name}__title"), lang, LIST)
        for f in fields]) for row in rows]


def summed(fields: Iterable[FieldDef]) -> list[FieldDef]:
    """The columns a list's totals row (and a board's column) sums: money."""
    return [f for f in fields if f.kind.summed]
