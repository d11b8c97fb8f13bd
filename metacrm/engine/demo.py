"""Demo and benchmark data: plausible records for any installed object, seeded.

Values come from each field's type, so the generator works for every template.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm.engine import records
from metacrm.engine.actor import Actor
from metacrm.engine.registry import Registry
from metacrm.metadata.model import FieldDef, ObjectDef

COMPANY_PARTS = ("华东", "远航", "星辰", "蓝海", "智造", "恒信", "云图", "启明", "金桥", "安泰",
                 "Apex", "Northwind", "Globex", "Initech", "Umbrella", "Stark")
SUFFIXES = ("科技有限公司", "贸易有限公司", "集团", "制造有限公司", "Ltd.", "Inc.")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛")


class ValueMaker:
    """One plausible value per field type (the demo data's catalogue)."""

    def __init__(self, rng: random.Random, today: dt.date):
        self.rng = rng
        self.today = today

    def value(self, f: FieldDef, index: int, refs: dict[str, list[int]]) -> Any:
        maker = getattr(self, f"make_{f.type}", None)
        return maker(f, index, refs) if maker else None

    def make_text(self, f, i, refs):
        if f.unique or f.name == "name":
            return (f"{self.rng.choice(COMPANY_PARTS)}{self.rng.choice(COMPANY_PARTS)}"
                    f"{self.rng.choice(SUFFIXES)} {i:06d}")[: f.max_length or 255]
        return f"{self.rng.choice(SURNAMES)}{self.rng.choice(GIVEN)}"

    def make_textarea(self, f, i, refs):
        return self.rng.choice(("重点跟进", "需要报价", "已发送资料", "等待回复", None))

    def make_integer(self, f, i, refs):
        return self.rng.randint(1, 5000)

    def make_decimal(self, f, i, refs):
        return Decimal(self.rng.randint(0, 10_000_000)) / 100

    make_currency = make_decimal

    def make_percent(self, f, i, refs):
        return Decimal(self.rng.choice((10, 20, 30, 50, 60, 80, 90)))

    def make_date(self, f, i, refs):
        return self.today + dt.timedelta(days=self.rng.randint(-180, 180))

    def make_datetime(self, f, i, refs):
        return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=self.rng.randint(-50000, 50000))

    def make_boolean(self, f, i, refs):
        return self.rng.random() < 0.2

    def make_select(self, f, i, refs):
        return self.rng.choice(f.option_values) if f.option_values else None

    def make_multiselect(self, f, i, refs):
        return self.rng.sample(list(f.option_values), k=min(2, len(f.option_values)))

    def make_lookup(self, f, i, refs):
        ids = refs.get(f.target) or []
        return self.rng.choice(ids) if ids else None

    def make_user(self, f, i, refs):
        return None

    def make_email(self, f, i, refs):
        return f"user{i}@example.com"

    def make_phone(self, f, i, refs):
        return f"1{self.rng.randint(3, 9)}{self.rng.randint(0, 999_999_999):09d}"

    def make_url(self, f, i, refs):
        return f"https://www.example{i}.com"


def dependency_order(registry: Registry) -> list[ObjectDef]:
    """Objects ordered so that lookup targets come before the objects pointing at them."""
    done: list[ObjectDef] = []
    pending = list(registry.active_objects)
    while pending:
        ready = [o for o in pending if all(
            f.target in {d.name for d in done} or f.target == o.name or f.target not in
            registry.objects for f in o.active_fields if f.target)]
        ready = ready or pending[:1]
        done.extend(ready)
        pending = [o for o in pending if o not in ready]
    return done


def make_values(obj: ObjectDef, count: int, maker: ValueMaker, refs: dict[str, list[int]],
                start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + count):
        row = {}
        for f in obj.active_fields:
            if f.kind.generated or (f.default is not None and maker.rng.random() < 0.5):
                continue
            value = maker.value(f, i, refs)
            if value is not None:
                row[f.name] = value
        rows.append(row)
    return rows


def populate(session: Session, registry: Registry, actor: Actor, per_object: int = 50,
             seed: int = 42, batch: int = 1000) -> dict[str, int]:
    """Create ``per_object`` records of every object through the records service."""
    maker = ValueMaker(random.Random(seed), dt.date.today())
    refs: dict[str, list[int]] = {}
    created = {}
    for obj in dependency_order(registry):
        table = registry.table(obj)
        start = session.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)) \
            .scalar() or 0
        ids: list[int] = []
        for offset in range(0, per_object, batch):
            values = make_values(obj, min(batch, per_object - offset), maker, refs,
                                 start + offset)
            ids.extend(r["id"] for r in records.create_many(session, registry, obj, values,
                                                            actor=actor))
        refs[obj.name] = ids
        created[obj.name] = len(ids)
    return created
