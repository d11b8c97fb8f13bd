"""Demo and benchmark data: plausible records for any installed object, seeded.

Values come from each field's type, so the generator works for every template.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.engine.access.permissions import ALL_OBJECTS
from metacrm.engine.actor import Actor
from metacrm.engine.demo_stages import walk_stages
from metacrm.engine.demo_values import ValueMaker
from metacrm.engine.errors import PermissionDenied, ValidationFailed
from metacrm.engine.flows import approval_rules, stages
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import records
from metacrm.metadata.model import ObjectDef

__all__ = ["DEMO_PASSWORD", "populate", "populate_approvals", "populate_org"]

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


# Hints given even where the field has a default: values that follow from the record (its
# catalogue entry, its person's name) and weighted picks (their weights say how often).
ALWAYS_GIVEN = ("product", "gender", "pick")
# Made after the values they follow from.
FOLLOWING_HINTS = ("deal", "gender")


def make_values(registry: Registry, obj: ObjectDef, count: int, maker: ValueMaker,
                start: int = 0, presets: list[dict[str, Any]] | None = None
                ) -> list[dict[str, Any]]:
    """New records' values: not those the engine owns (stages, win rates, what approvals
    set), nor lost reasons, nor, half the time, those with a default. ``presets``: values
    already chosen for each row (the master of a line)."""
    owned = stages.managed_fields(registry, obj) | {
        name for f in registry.flows_of(obj.name) for name in f.updated_fields} | {
        s.reason_field for p in registry.processes_of(obj.name) for s in p.stages
        if s.reason_field}  # given when the record is lost
    fields = {f.name: f for f in obj.active_fields}
    # Values that follow from others (a deal named after its company) come last.
    ordered = sorted(obj.active_fields,
                     key=lambda f: (f.demo or "").partition(":")[0] in FOLLOWING_HINTS)
    rows = []
    for i in range(start, start + count):
        row: dict[str, Any] = dict(presets[i - start]) if presets else {}
        for f in ordered:
            if f.kind.generated or f.name in owned or f.name in row or (
                    f.default is not None and (f.demo or "").partition(":")[0] not in
                    ALWAYS_GIVEN and maker.rng.random() < 0.5):
                continue
            value = maker.value(f, i, row, fields)
            if value is not None:
                row[f.name] = value
            elif f.required and f.default is None and not f.default_expression:
                break  # nothing plausible left (a payment when every agreement is paid)
        else:
            rows.append(row)
    return rows


def line_presets(obj: ObjectDef, maker: ValueMaker) -> list[dict[str, Any]] | None:
    """The lines of another object's records (quote lines): one to four for each of
    them, so no record is left without; None for an object that is no one's lines."""
    master = obj.master_field
    if master is None or not maker.refs.get(master.target_object):
        return None
    return [{master.name: parent} for parent in maker.refs[master.target_object]
            for _ in range(maker.rng.randint(1, 4))]


def populate_approvals(session: Session, registry: Registry, per_flow: int = 8) -> int:
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
        # Reps' records first: their requests reach a manager's inbox.
        has_superior = select(sys_user.c.id).where(sys_user.c.id == table.c.owner,
                                                   sys_user.c.superior_id.is_not(None))
        candidates = session.execute(select(table).where(
            table.c.deleted.is_(False), table.c.owner.is_not(None))
            .order_by(has_superior.exists().desc(), table.c.id.desc()).limit(200)).mappings()
        for row in candidates:
            if done >= per_flow:
                break
            process = stages.process_of(session, registry, obj, dict(row))
            stage = process.stage(row.get(process.field)) if process else None
            if stage is not None and stage.terminal:  # a won or lost deal asks for nothing
                continue
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


def owners_of(session: Session, obj: ObjectDef, owners: list[int]) -> list[int]:
    """Those of the owners who may create and edit the object's records (finance does
    not own deals: they could not move them on)."""
    from metacrm.engine.access import permissions, users

    found = []
    for user_id in owners:
        actor = users.load_actor(session, user_id)
        if actor is not None and all(permissions.granted(session, actor, obj, op)
                                     for op in ("create", "edit")):
            found.append(user_id)
    return found


def able_owners(obj: ObjectDef, keepers: list[int], maker: ValueMaker) -> list[int]:
    """Those of the keepers who may read a record for each required lookup (one who may
    read none of the records a required field points at owns none), else all of them."""
    able = [user_id for user_id in keepers if all(
        maker.readable_by(user_id, f.target_object) for f in obj.active_fields
        if f.type == "lookup" and f.required and f.target_object != obj.name)]
    return able or keepers


def readable(session: Session, registry: Registry, obj: ObjectDef, owners: list[int]
             ) -> dict[int, set[int]]:
    """The object's records each of the owners may read (one who reads all is left out),
    as the permission engine says."""
    from metacrm.engine.access import permissions, users

    table = registry.table(obj)
    found = {}
    for user_id in owners:
        actor = users.load_actor(session, user_id)
        if actor is None or permissions.access_of(session, actor).is_super:
            continue
        found[user_id] = set(session.execute(select(table.c.id).where(
            table.c.deleted.is_(False),
            permissions.condition(session, actor, obj, table, "read"))).scalars())
    return found


def populate(session: Session, registry: Registry, actor: Actor, per_object: int = 50,
             seed: int = 42, batch: int = 1000, owners: list[int] | None = None
             ) -> dict[str, int]:
    """Create ``per_object`` records of every object through the records service, each
    owned by one of ``owners`` (default: the actor) and pointing at records its owner
    may read; records that follow a stage process then move through it as their owners
    would (demo_stages.py)."""
    maker = ValueMaker(random.Random(seed), clock.today())
    created = {}
    for obj in dependency_order(registry):
        table = registry.table(obj)
        start = session.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)) \
            .scalar() or 0
        ids: list[int] = []
        presets = line_presets(obj, maker)
        keepers = able_owners(obj, owners_of(session, obj, owners or []), maker)
        count = len(presets) if presets is not None else per_object
        for offset in range(0, count, batch):
            size = min(batch, count - offset)
            # The owner comes first: the records it points at are ones he may read.
            given = presets[offset:offset + batch] if presets is not None else \
                [{"owner": maker.rng.choice(keepers)} for _ in range(size)] if keepers \
                else None
            values = make_values(registry, obj, size, maker, start + offset, given)
            if not values:
                continue
            if keepers and presets is not None:  # lines: their master's owner reads them
                for row in values:
                    row["owner"] = maker.rng.choice(keepers)
            made = [dict(r) for r in _create(session, registry, obj, values, actor)]
            maker.remember(obj.name, obj.title_field, made)
            ids.extend(r["id"] for r in made)
        if "owner" in obj.features:
            maker.readable[obj.name] = readable(session, registry, obj, owners or [])
        if registry.processes_of(obj.name):
            walk_stages(session, registry, obj, ids, maker, actor)
        created[obj.name] = len(ids)
    return created
