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

from metacrm.engine.access.permissions import ALL_OBJECTS
from metacrm.engine.actor import Actor
from metacrm.engine.errors import PermissionDenied, ValidationFailed
from metacrm.engine.flows import approval_rules, stages
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.metadata import regions
from metacrm.metadata.model import FieldDef, ObjectDef

__all__ = ["DEMO_PASSWORD", "populate", "populate_approvals", "populate_org"]

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

    def value(self, f: FieldDef, index: int, refs: dict[str, list[int]],
              row: dict[str, Any] | None = None) -> Any:
        if f.filter:  # a filtered lookup's candidates depend on the record: leave it empty
            return None
        if f.depends_on:
            return self.dependent(f, (row or {}).get(f.depends_on))
        maker = getattr(self, f"make_{f.type}", None)
        return maker(f, index, refs) if maker else None

    def dependent(self, f: FieldDef, controller: Any) -> Any:
        offered = [o.value for o in f.options if o.active and (
            not o.parents or controller in o.parents)]
        return self.rng.choice(offered) if offered else None

    def make_region(self, f, i, refs):
        code = None
        for _ in range(f.region_level):
            below = regions.children(code)
            if not below:
                break
            code = self.rng.choice(below).code
        return code

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
        return Decimal(self.rng.randint(100, 10_000_000)) / 100

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
        row: dict[str, Any] = {}
        for f in obj.active_fields:
            if f.kind.generated or (f.default is not None and maker.rng.random() < 0.5):
                continue
            value = maker.value(f, i, refs, row)
            if value is not None:
                row[f.name] = value
        rows.append(row)
    return rows


def stage_values(registry: Registry, obj: ObjectDef, rows: list[dict[str, Any]],
                 maker: ValueMaker) -> None:
    """Records of an object with stage processes: a stage of the record's process (mostly
    open ones), a lost reason only when lost, and no values an approval's outcome sets."""
    processes = registry.processes_of(obj.name)
    if not processes:
        return
    outcome = {name for f in registry.flows_of(obj.name)
               for name in (*(f.on_approve or {}), *(f.on_reject or {}))}
    reasons = {s.reason_field for p in processes for s in p.stages if s.reason_field}
    for row in rows:
        process = registry.process_for(obj.name, row.get("business_type"), set()) or \
            processes[0]
        weights = [1 if s.terminal else 3 for s in process.stages]
        stage = maker.rng.choices(process.stages, weights)[0]
        row[process.field] = stage.name
        for name in outcome | reasons:
            row.pop(name, None)
        if stage.reason_field:
            f = obj.all_fields[stage.reason_field]
            row[stage.reason_field] = maker.value(f, 0, {}, row)


def populate_approvals(session: Session, registry: Registry, per_flow: int = 3) -> int:
    """A few records submitted to each submit-triggered flow by their owners, so the
    approval inbox and the todo centre have something to show."""
    from metacrm.engine.access import users
    from metacrm.engine.flows import approvals

    submitted = 0
    for flow in registry.approval_flows.values():
        if flow.trigger != "submit" or flow.chosen_steps:
            continue
        done = 0
        obj = registry.object(flow.object)
        table = registry.table(obj)
        candidates = session.execute(select(table).where(
            table.c.deleted.is_(False), table.c.owner.is_not(None))
            .order_by(table.c.id.desc()).limit(200)).mappings()
        for row in candidates:
            if done >= per_flow:
                break
            if not approval_rules.applies(session, registry, obj, flow, dict(row)) or \
                    approval_rules.pending_for(session, obj, row["id"]):
                continue
            owner = users.load_actor(session, row["owner"])
            if owner is None:  # an inactive owner submits nothing
                continue
            try:
                with session.begin_nested():
                    approvals.submit(session, registry, obj, row["id"], flow.name, actor=owner)
                done += 1
            except (ValidationFailed, PermissionDenied):
                continue
        submitted += done
    return submitted


DEMO_PASSWORD = "demo-password"
DEMO_DEPARTMENTS = (("销售部", None), ("华东销售组", "销售部"), ("华北销售组", "销售部"),
                    ("财务部", None))
DEMO_ROLES = (
    ("sales_manager", {"en": "Sales manager", "zh": "销售经理"}, "department_tree",
     {"read", "create", "edit", "delete", "transfer", "import", "export"}),
    ("sales_rep", {"en": "Sales rep", "zh": "销售员"}, "own",
     {"read", "create", "edit", "delete", "transfer"}),
    ("finance", {"en": "Finance", "zh": "财务"}, "all", {"read", "export"}),
)
# username, name, department, superior, role
DEMO_USERS = (
    ("wang", "王经理", "销售部", None, "sales_manager"),
    ("zhang", "张伟", "华东销售组", "wang", "sales_rep"),
    ("li", "李娜", "华东销售组", "wang", "sales_rep"),
    ("zhao", "赵强", "华北销售组", "wang", "sales_rep"),
    ("qian", "钱芳", "财务部", None, "finance"),
)


def populate_org(session: Session) -> list[int]:
    """A small company: departments, roles and users who own the demo records."""
    from metacrm.engine.access import org, roles, users

    root = org.root_department_id(session)
    departments: dict[str, int] = {}
    for name, parent in DEMO_DEPARTMENTS:
        departments[name] = org.create_department(session, name,
                                                  departments[parent] if parent else root)
    for name, label, scope, operations in DEMO_ROLES:
        role = roles.role_id(session, name) or roles.create_role(session, name, label)
        roles.set_grants(session, role, {(ALL_OBJECTS, op): scope for op in operations}, None)
    ids: dict[str, int] = {}
    for username, display, department, superior, role_name in DEMO_USERS:
        ids[username] = users.create_user(
            session, username, DEMO_PASSWORD, display_name=display,
            department_id=departments[department],
            superior_id=ids.get(superior) if superior else None, roles=[role_name])
    org.update_department(session, departments["销售部"], head_id=ids["wang"])
    return list(ids.values())


def _create(session: Session, registry: Registry, obj: ObjectDef,
            values: list[dict[str, Any]], actor: Actor) -> list[dict[str, Any]]:
    """Random values may break a validation rule (an end before its start): such a row
    loses the optional values named, and the batch is tried again."""
    for _ in range(len(values) * 4 + 1):
        try:
            with session.begin_nested():
                # Demo records are placed along their stage paths, as the stage
                # engine would have moved them (their stages are not a user's input).
                return records.create_many(session, registry, obj, values, actor=actor,
                                           by=stages.OWNER)
        except ValidationFailed as exc:
            row = values[exc.row or 0]
            named = set(exc.fields)
            for rule, condition in registry.logic_of(obj).rules:
                if named & set(rule.fields):
                    named |= condition.names
            fields = [name for name in named if name in row and
                      not obj.all_fields[name].required]
            if not fields:
                raise
            for name in fields:
                row.pop(name)
    raise RuntimeError("demo values kept breaking the rules")


def populate(session: Session, registry: Registry, actor: Actor, per_object: int = 50,
             seed: int = 42, batch: int = 1000, owners: list[int] | None = None
             ) -> dict[str, int]:
    """Create ``per_object`` records of every object through the records service, each
    owned by one of ``owners`` (default: the actor)."""
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
            stage_values(registry, obj, values, maker)
            if owners:
                for row in values:
                    row["owner"] = maker.rng.choice(owners)
            ids.extend(r["id"] for r in _create(session, registry, obj, values, actor))
        refs[obj.name] = ids
        created[obj.name] = len(ids)
    return created
