"""The demo data's value catalogue: one plausible value per field, seeded.

A field's ``demo`` hint in the metadata names the kind of value (a company, a person, a
job title, a project, a number range, a share of a parent's amount…); a field without one
gets a value of its type. Nothing here names an object: the hints say what fields mean.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from metacrm import clock
from metacrm.metadata import regions
from metacrm.metadata.model import FieldDef

CITIES = ("杭州", "上海", "北京", "深圳", "广州", "南京", "苏州", "成都", "武汉", "西安",
          "宁波", "天津", "重庆", "合肥", "厦门", "青岛", "长沙", "郑州")
BRANDS = ("云启", "华信", "恒通", "博远", "锐思", "智联", "鼎盛", "瑞丰", "宏达", "新元",
          "卓越", "天成", "启航", "汇通", "中科", "正泰", "精工", "海纳", "弘毅", "嘉禾",
          "明德", "远景", "鸿图", "安信", "德润", "金盛", "益康", "华章", "润泽", "伟业")
TRADES = ("信息技术", "网络科技", "软件", "电子", "机械制造", "医疗器械", "物流", "贸易",
          "教育科技", "食品", "新材料", "建筑工程", "环保科技", "汽车零部件")
COMPANY_FORMS = ("有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
# Given names as people read them: a man's, a woman's (the gender a ``gender`` hint gives).
GIVEN_MALE = ("建国", "伟", "志强", "俊杰", "晓明", "文博", "浩然", "国庆", "建华", "立新",
              "明辉", "磊", "鹏", "杰", "涛", "勇", "斌", "宇航", "思远", "永刚", "海峰", "振华")
GIVEN_FEMALE = ("敏", "静", "丽娟", "秀英", "海燕", "雪梅", "欣怡", "红霞", "婷", "洁", "芳",
                "霞", "佳琪", "春燕", "晓燕", "美玲", "雅琴", "慧敏", "丽华", "淑珍")
JOB_TITLES = ("采购经理", "IT总监", "总经理", "财务总监", "技术负责人", "采购专员",
              "信息中心主任", "运营总监", "副总经理", "项目经理", "行政经理", "销售总监",
              "首席技术官", "生产经理", "董事长助理", "信息化专员")


@dataclass(frozen=True)
class Product:
    """An entry of the demo catalogue: what it is called, its category (an option value
    of a category field), its unit and the range of its list price."""

    name: str
    category: str
    unit: str
    low: int
    high: int


PRODUCTS = (
    Product("CRM年度订阅", "software", "套", 20_000, 120_000),
    Product("移动销售App授权", "software", "套", 3_000, 30_000),
    Product("数据分析平台", "software", "套", 30_000, 200_000),
    Product("ERP财务模块", "software", "套", 40_000, 180_000),
    Product("仓储管理系统 WMS", "software", "套", 50_000, 200_000),
    Product("企业网盘年度订阅 1TB", "software", "年", 2_000, 12_000),
    Product("协同办公平台", "software", "套", 10_000, 80_000),
    Product("智能门禁一体机 X3", "hardware", "台", 1_500, 6_000),
    Product("工业平板电脑 T10", "hardware", "台", 3_000, 9_000),
    Product("数据备份一体机 B200", "hardware", "台", 20_000, 80_000),
    Product("网络安全网关 G5", "hardware", "台", 8_000, 45_000),
    Product("视频会议终端 V8", "hardware", "台", 5_000, 30_000),
    Product("条码打印机 P300", "hardware", "台", 800, 3_500),
    Product("智能考勤机 K2", "hardware", "台", 600, 2_500),
    Product("高清网络摄像机 C4", "hardware", "台", 500, 2_000),
    Product("机架式服务器 R740", "hardware", "台", 30_000, 150_000),
    Product("云服务器托管服务（年）", "service", "年", 6_000, 60_000),
    Product("实施服务（人天）", "service", "人天", 1_500, 3_000),
    Product("培训服务（人天）", "service", "人天", 1_200, 2_500),
    Product("运维服务包（年）", "service", "年", 10_000, 90_000),
    Product("数据迁移服务", "service", "项", 8_000, 50_000),
)
# Variants that make sense for each category (the catalogue's first round has none).
VARIANTS = {
    "software": ("标准版", "专业版", "旗舰版", "教育版", "政务版", "私有化部署版", "海外版",
                 "精简版", "增强版"),
    "hardware": ("Pro", "Max", "Lite", "二代", "三代", "增强型", "户外型", "工业级", "标准型"),
    "service": ("标准包", "高级包", "华东区", "华北区", "华南区", "远程", "驻场", "7×24",
                "加急"),
}
PROJECTS = ("ERP 升级项目", "CRM 系统采购", "数据中心扩容", "门禁系统改造", "办公网络升级",
            "视频会议系统建设", "财务系统上线", "智慧仓储项目", "安防监控项目", "年度软件续费",
            "信息化培训采购", "生产线数字化改造", "移动办公平台建设", "服务器更新采购")
ROADS = ("文三路", "中山路", "人民路", "解放路", "建设路", "科技园路", "长江路", "黄河路",
         "滨江大道", "创新大道", "学院路", "天府大道", "东方路", "软件园路")
BUILDINGS = ("", "A座", "B座", "科技大厦", "创业大厦", "国际中心", "1号楼", "3号楼")
UNITS = ("套", "台", "年", "个", "项")
COMPANY_ENDING = re.compile(r"(股份有限公司|集团有限公司|有限公司|集团)$")


def short_company(title: str) -> str:
    """A company as people say it: 杭州云启信息技术有限公司 -> 云启信息."""
    name = COMPANY_ENDING.sub("", title)
    for city in CITIES:
        if name.startswith(city) and len(name) > len(city) + 1:
            name = name[len(city):]
            break
    return name[:4]


class ValueMaker:
    """One plausible value per field: by its ``demo`` hint, else by its type.

    ``refs``: the ids created so far per object; ``rows``: their values (to follow a
    lookup to its title, its values or what its amount still leaves); ``readable``: per
    object, the ids each owner may read (an owner not named reads them all)."""

    def __init__(self, rng: random.Random, today: dt.date):
        self.rng = rng
        self.today = today
        self.refs: dict[str, list[int]] = {}
        self.rows: dict[str, dict[int, dict[str, Any]]] = {}
        self.titles: dict[str, str] = {}  # object -> its title field
        self.used: set[str] = set()  # unique values handed out
        self.shared: dict[tuple[str, int, str], Decimal] = {}  # (object, id, field) -> taken
        self.picked: dict[tuple[str, str, Any], set[int]] = {}  # a master's lines' choices
        self.readable: dict[str, dict[int, set[int]]] = {}  # object -> owner -> ids

    def remember(self, object_name: str, title_field: str, records: list[dict[str, Any]]
                 ) -> None:
        self.titles[object_name] = title_field
        self.refs.setdefault(object_name, []).extend(r["id"] for r in records)
        self.rows.setdefault(object_name, {}).update({r["id"]: r for r in records})

    # -- dispatch --------------------------------------------------------------------------
    def value(self, f: FieldDef, index: int, row: dict[str, Any], fields: dict[str, FieldDef]
              ) -> Any:
        kind, _, arg = (f.demo or "").partition(":")
        if kind == "none":
            return None
        hint = getattr(self, f"hint_{kind}", None) if kind else None
        if hint is not None:
            return hint(f, index, row, fields, arg)
        if f.depends_on:
            return self.dependent(f, row.get(f.depends_on))
        if f.type == "lookup":
            return self.lookup(f, row, fields)
        maker = getattr(self, f"make_{f.type}", None)
        return maker(f, index) if maker else None

    def unique(self, f: FieldDef, make: Any, fallback: Any) -> str:
        for _ in range(30):
            text = make()
            if not f.unique or text not in self.used:
                break
        else:
            text = fallback()
        self.used.add(text)
        return text[: f.max_length or 255]

    # -- hints -----------------------------------------------------------------------------
    def hint_company(self, f, i, row, fields, arg):
        r = self.rng

        def make() -> str:
            return (f"{r.choice(CITIES)}{r.choice(BRANDS)}{r.choice(TRADES)}"
                    f"{r.choice(COMPANY_FORMS)}")

        return self.unique(f, make, lambda: f"{r.choice(CITIES)}{r.choice(BRANDS)}"
                                            f"{r.choice(TRADES)}第{i + 1}分公司")

    def hint_person(self, f, i, row, fields, arg):
        given = GIVEN_FEMALE if self.rng.random() < 0.45 else GIVEN_MALE
        return f"{self.rng.choice(SURNAMES)}{self.rng.choice(given)}"

    def hint_gender(self, f, i, row, fields, arg):
        """The gender the record's person's given name says, as the option values named
        (``gender:MALE|FEMALE``, default male|female)."""
        male, _, female = (arg or "male|female").partition("|")
        for name, other in fields.items():
            person = row.get(name)
            if (other.demo or "").partition(":")[0] == "person" and isinstance(person, str):
                value = female if person[1:] in GIVEN_FEMALE else male
                return value if not f.option_values or value in f.option_values else None
        return None

    def hint_job_title(self, f, i, row, fields, arg):
        return self.rng.choice(JOB_TITLES)

    def hint_product(self, f, i, row, fields, arg):
        """The record's entry of the catalogue (the ``i``-th, so every field of a record
        names the same one): its name, then its variants (CRM年度订阅（旗舰版）), or with
        an argument, what the entry says of it: ``product:category``, ``product:unit``,
        ``product:price`` (within its range)."""
        entry, variant = PRODUCTS[i % len(PRODUCTS)], i // len(PRODUCTS)
        if arg == "price":
            return self.number(f, entry.low, entry.high)
        if arg in ("category", "unit"):
            value = getattr(entry, arg)
            return value if f.type != "select" or value in f.option_values else None
        variants = VARIANTS[entry.category]
        name = entry.name
        if variant:
            extra = variants[(variant - 1) % len(variants)]
            name = f"{name}（{extra}）" if entry.category != "hardware" else f"{name} {extra}"
        if variant > len(variants):
            name = f"{name} {2024 + (variant - 1) // len(variants)}款"
        return self.unique(f, lambda: name, lambda: f"{name} {i}")

    def hint_address(self, f, i, row, fields, arg):
        r = self.rng
        building = r.choice(BUILDINGS)
        floor = f"{r.randint(2, 28)}层" if building else ""
        return f"{r.choice(ROADS)}{r.randint(1, 999)}号{building}{floor}"

    def hint_unit(self, f, i, row, fields, arg):
        return self.rng.choice(UNITS)

    def hint_birthday(self, f, i, row, fields, arg):
        return self.today - dt.timedelta(days=self.rng.randint(23 * 365, 58 * 365))

    def hint_deal(self, f, i, row, fields, arg):
        """A project of the company the record is about (its first lookup chosen)."""
        company = ""
        for name, other in fields.items():
            if other.type == "lookup" and row.get(name):
                found = self.rows.get(other.target_object, {}).get(row[name], {})
                company = short_company(str(found.get(self.titles.get(other.target_object,
                                                                      ""), "")))
                break
        return f"{company} {self.rng.choice(PROJECTS)}{arg}".strip()[: f.max_length or 255]

    def hint_range(self, f, i, row, fields, arg):
        low, high = (int(x) for x in arg.split("-", 1))
        return self.number(f, low, high)

    def number(self, f: FieldDef, low: int, high: int) -> int | Decimal:
        """A round number between low and high (three significant digits)."""
        step = 10 ** max(0, len(str(high)) - 3)
        number = self.rng.randint(max(low // step, 0), high // step) * step
        number = min(max(number, low), high)
        return number if f.type == "integer" else Decimal(number)

    def hint_soon(self, f, i, row, fields, arg):
        """A date (or a time in office hours) a few days from today: soon:-5..20, so
        reminder rules have items due today and in the coming days."""
        low, _, high = arg.partition("..")
        day = self.today + dt.timedelta(days=self.rng.randint(int(low), int(high)))
        if f.type != "datetime":
            return day
        at = dt.datetime.combine(day, dt.time(self.rng.randint(9, 17), 0), clock.zone())
        return at.astimezone(dt.UTC)

    def hint_pick(self, f, i, row, fields, arg):
        """One of the values, as often as their weights say: pick:active=5|draft=2."""
        pairs = [part.partition("=") for part in arg.split("|")]
        value = self.rng.choices([v for v, _, _ in pairs],
                                 weights=[int(w or 1) for _, _, w in pairs])[0]
        return value if f.type != "select" or value in f.option_values else None

    def hint_where(self, f, i, row, fields, arg):
        """A lookup to records whose field holds one of the values: where:status=a|b."""
        name, _, values = arg.partition("=")
        wanted = set(values.split("|"))
        return self.lookup(f, row, fields, lambda r: str(r.get(name)) in wanted)

    def hint_share(self, f, i, row, fields, arg):
        """Part of what the looked-up record's amount leaves (all of it at most)."""
        via, _, of = arg.partition(".")
        parent = row.get(via)
        target = fields[via].target_object if via in fields else ""
        found = self.rows.get(target, {}).get(parent) if parent else None
        if not found or found.get(of) is None:
            return None
        key = (target, parent, of)
        left = Decimal(found[of]) - self.shared.get(key, Decimal(0))
        if left <= 0:
            return None
        part = (left * Decimal(self.rng.choice((30, 50, 100))) / 100).quantize(
            Decimal("0.01"), rounding=ROUND_DOWN)
        if part <= 0:
            return None
        self.shared[key] = self.shared.get(key, Decimal(0)) + part
        return part

    # -- by type ---------------------------------------------------------------------------
    def lookup(self, f: FieldDef, row: dict[str, Any], fields: dict[str, FieldDef],
               accept: Any = None) -> int | None:
        """A record of the target that the record's owner may read: one of his own if
        he has a fitting one, else one he may read (a manager's deal on his rep's
        company), else none."""
        ids = self.refs.get(f.target_object) or []
        rows = self.rows.get(f.target_object, {})
        candidates = [i for i in ids if accept is None or accept(rows.get(i, {}))]
        owner = self.owner_of(row, fields)
        if owner is None:
            return self.choose(f, row, fields, candidates)
        readable = set(self.readable_by(owner, f.target_object))
        seen = [i for i in candidates if i in readable]
        own = [i for i in seen if rows.get(i, {}).get("owner") == owner]
        for pool in (own, seen) if len(own) < len(seen) else (own,):
            chosen = self.choose(f, row, fields, pool)
            if chosen is not None:
                return chosen
        return None

    def readable_by(self, owner: int, object_name: str) -> list[int]:
        """The records of the object made so far that the owner may read."""
        readable = self.readable.get(object_name, {}).get(owner)
        return [i for i in self.refs.get(object_name, []) if readable is None or i in readable]

    def owner_of(self, row: dict[str, Any], fields: dict[str, FieldDef]) -> int | None:
        """Who owns the record: its owner, or a line's master's owner."""
        for name, other in fields.items():
            if other.master and row.get(name) is not None:
                return self.rows.get(other.target_object, {}).get(row[name], {}).get("owner")
        return row.get("owner")

    def choose(self, f: FieldDef, row: dict[str, Any], fields: dict[str, FieldDef],
               candidates: list[int]) -> int | None:
        """One of the candidates about the same records as this one where both look
        them up (a person of the deal's company), and with something left where a
        field of this object takes a share of it."""
        rows = self.rows.get(f.target_object, {})
        for name, other in fields.items():
            # A company with people, so that the record's person can be one of them.
            if other.type == "lookup" and name != f.name and row.get(name) is None:
                linked = {r.get(f.name) for r in self.rows.get(other.target_object, {})
                          .values()}
                candidates = [i for i in candidates if i in linked] or candidates
        for name, other in fields.items():
            if other.type == "lookup" and name != f.name and row.get(name) is not None \
                    and any(name in r for r in rows.values()):
                candidates = [i for i in candidates if rows.get(i, {}).get(name) == row[name]]
        shares = [x.demo.partition(":")[2].partition(".") for x in fields.values()
                  if x.demo and x.demo.startswith("share:")]
        for via, _, of in shares:
            if via == f.name:
                candidates = [i for i in candidates if rows.get(i, {}).get(of) is not None and
                              Decimal(rows[i][of]) - self.shared.get((f.target_object, i, of),
                                                                     Decimal(0)) > 0]
        # The lines of one record name different products.
        master = next((name for name, other in fields.items() if other.master), None)
        siblings = (f.target_object, master, row.get(master)) if master else None
        if siblings is not None:
            candidates = [i for i in candidates if i not in self.picked.get(siblings, ())] \
                or candidates
        chosen = self.rng.choice(candidates) if candidates else None
        if siblings is not None and chosen is not None:
            self.picked.setdefault(siblings, set()).add(chosen)
        return chosen

    def dependent(self, f: FieldDef, controller: Any) -> Any:
        offered = [o.value for o in f.options if o.active and (
            not o.parents or controller in o.parents)]
        return self.rng.choice(offered) if offered else None

    def make_region(self, f, i):
        code = None
        for _ in range(f.region_level):
            below = regions.children(code)
            if not below:
                break
            code = self.rng.choice(below).code
        return code

    def make_text(self, f, i):
        if f.unique:
            return self.unique(f, lambda: f"{self.rng.choice(BRANDS)}{i:06d}",
                               lambda: f"{self.rng.choice(BRANDS)}{i:06d}-{len(self.used)}")
        return self.rng.choice(("标准", "重点", "常规", "待定"))

    def make_textarea(self, f, i):
        return self.rng.choice(("重点跟进", "需要报价", "已发送资料", "等待回复", None))

    def make_integer(self, f, i):
        return self.rng.randint(1, 500)

    def make_decimal(self, f, i):
        return Decimal(self.rng.randint(100, 1_000_000)) / 100

    make_currency = make_decimal

    def make_percent(self, f, i):
        return Decimal(self.rng.choice((10, 20, 30, 50, 60, 80, 90)))

    def make_date(self, f, i):
        return self.today + dt.timedelta(days=self.rng.randint(-180, 180))

    def make_datetime(self, f, i):
        return clock.now() + dt.timedelta(minutes=self.rng.randint(-50000, 50000))

    def make_boolean(self, f, i):
        return self.rng.random() < 0.2

    def make_select(self, f, i):
        return self.rng.choice(f.option_values) if f.option_values else None

    def make_multiselect(self, f, i):
        return self.rng.sample(list(f.option_values), k=min(2, len(f.option_values)))

    def make_email(self, f, i):
        return f"user{i}@example.com"

    def make_phone(self, f, i):
        return f"1{self.rng.randint(3, 9)}{self.rng.randint(0, 999_999_999):09d}"

    def make_url(self, f, i):
        return f"https://www.example{i}.com"
