"""An organisation to test data permissions against, and its scopes worked out in Python.

    全公司 (admin)
    ├── 销售部 (director)
    │   ├── 华东 (manager → director, rep_east → manager, peer_east → director)
    │   │   └── 上海 (rep_shanghai → manager)
    │   └── 华北 (rep_north → director)
    └── 财务部 (finance)

Each user owns one record of every object, and one record of each has no owner. The
expected scopes are computed from these tables, never from the engine under test.

Not a test file: test modules build a ``Crm`` from a database of their own
(``world`` + ``rolled_back`` for a module-wide organisation, ``build_crm`` on a fresh one).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import instance
from metacrm.engine.access import org, roles, users
from metacrm.engine.actor import SYSTEM, Actor
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.writing import records
from metacrm.metadata.templates import load_paths

from conftest import SAMPLE, fresh_database

PASSWORD = "org-password"
DEPARTMENTS = (  # name, parent; parents first
    ("销售部", org.ROOT_NAME),
    ("华东", "销售部"),
    ("上海", "华东"),
    ("华北", "销售部"),
    ("财务部", org.ROOT_NAME),
)
PEOPLE = (  # key, department, superior
    ("admin", org.ROOT_NAME, None),
    ("director", "销售部", None),
    ("manager", "华东", "director"),
    ("rep_east", "华东", "manager"),
    ("peer_east", "华东", "director"),
    ("rep_shanghai", "上海", "manager"),
    ("rep_north", "华北", "director"),
    ("finance", "财务部", None),
)
NOBODY = None  # the owner key of the record without an owner


def sample_objects() -> dict[str, tuple[str, ...]]:
    """The sample template's active objects and their features, read from its files.
    Line items (a master lookup) have no permissions of their own: their parent's apply."""
    return {d.name: tuple(d.content.get("features", ()))
            for d in sorted(load_paths([SAMPLE]).of_kind("object"), key=lambda d: d.name)
            if not d.content.get("archived")
            and not any(f.get("master") for f in d.content["fields"])}


# -- expectations in plain Python ---------------------------------------------------------
@dataclass
class Org:
    departments: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    records: dict[str, dict[str | None, int]] = field(default_factory=dict)  # object → owner

    parent = {name: parent for name, parent in DEPARTMENTS} | {org.ROOT_NAME: None}
    department_of = {key: department for key, department, _ in PEOPLE}
    superior_of = {key: superior for key, _, superior in PEOPLE}

    def subordinates(self, key: str) -> set[str]:
        """The user and everyone below them through the superior chain."""
        found = {key}
        while True:
            more = {k for k, s in self.superior_of.items() if s in found} - found
            if not more:
                return found
            found |= more

    def department_tree(self, name: str) -> set[str]:
        found = {name}
        while True:
            more = {d for d, p in self.parent.items() if p in found} - found
            if not more:
                return found
            found |= more

    def owners_in(self, scope: str, key: str) -> set[str | None]:
        """Whose records a grant of ``scope`` to user ``key`` reaches (None: no owner)."""
        mine = self.department_of[key]
        if scope == "none":
            return set()
        if scope == "own":
            return {key}
        if scope == "own_and_subordinates":
            return set(self.subordinates(key))
        if scope == "department":
            return {k for k, d in self.department_of.items() if d == mine}
        if scope == "department_tree":
            tree = self.department_tree(mine)
            return {k for k, d in self.department_of.items() if d in tree}
        if scope == "all":
            return {*self.users, NOBODY}
        raise ValueError(scope)

    def ids(self, object_name: str, owners) -> set[int]:
        return {self.records[object_name][o] for o in owners}

    def expected(self, object_name: str, scope: str, key: str) -> set[int]:
        return self.ids(object_name, self.owners_in(scope, key))

    def all_ids(self, object_name: str) -> set[int]:
        return set(self.records[object_name].values())

    def owner_of(self, object_name: str, record_id: int) -> str | None:
        return next(o for o, i in self.records[object_name].items() if i == record_id)


# -- building it --------------------------------------------------------------------------
def _creation_order(registry: Registry) -> list[str]:
    """Objects with their lookup targets first."""
    done: list[str] = []
    pending = [o.name for o in registry.active_objects]
    while pending:
        for name in pending:
            targets = {f.target for f in registry.objects[name].active_fields
                       if f.required and f.target}
            if targets <= set(done) | {name}:
                done.append(name)
                pending.remove(name)
                break
        else:
            raise AssertionError(f"lookup cycle among {pending}")
    return done


def record_values(registry: Registry, object_name: str, owner: str | None,
                  found: Org, label: str = "") -> dict:
    """The required values of a record owned by ``owner``; lookups point at that owner's."""
    values: dict = {}
    for f in registry.objects[object_name].active_fields:
        if not f.required or f.kind.generated or f.default is not None:
            continue
        if f.target:
            values[f.name] = found.records[f.target][owner]
        elif f.kind.storage == "string":
            values[f.name] = f"{object_name} of {owner or 'nobody'}{label}"
        elif f.kind.storage in ("integer", "decimal"):
            values[f.name] = 100
        else:
            raise AssertionError(f"no sample value for required {object_name}.{f.name}")
    return values


def build_org(session: Session, registry: Registry) -> Org:
    """The departments, users and records above; nothing is committed."""
    found = Org()
    roles.ensure_defaults(session)
    found.departments[org.ROOT_NAME] = org.root_department_id(session)
    for name, parent in DEPARTMENTS:
        found.departments[name] = org.create_department(session, name,
                                                        found.departments[parent])
    for key, department, superior in PEOPLE:
        found.users[key] = users.create_user(
            session, key, PASSWORD, is_admin=key == "admin", display_name=key,
            department_id=found.departments[department],
            superior_id=found.users[superior] if superior else None)
    owners = [k for k, _, _ in PEOPLE]
    for name in _creation_order(registry):
        found.records[name] = {}
        rows = records.create_many(session, registry, name, [
            {**record_values(registry, name, k, found), "owner": found.users[k]}
            for k in owners], actor=SYSTEM)
        found.records[name] = {k: row["id"] for k, row in zip(owners, rows, strict=True)}
        # SYSTEM has no user id, so a record it creates without an owner keeps none.
        found.records[name][NOBODY] = records.create(
            session, registry, name, record_values(registry, name, NOBODY, found),
            actor=SYSTEM)["id"]
    return found


_role_numbers = itertools.count(1)


@dataclass
class Crm:
    """One test's view of the organisation: its session, registry and helpers."""

    session: Session
    registry: Registry
    org: Org

    def user(self, key: str) -> int:
        return self.org.users[key]

    def actor(self, key: str) -> Actor:
        return users.load_actor(self.session, self.user(key))

    def role(self, grants: Mapping[tuple[str, str], str], *,
             fields: Mapping[str, Mapping[str, str]] | None = None,
             label: Mapping[str, str] | None = None) -> str:
        """A new role with these grants ((object or '*', operation) → scope) and field rules."""
        name = f"role_{next(_role_numbers)}"
        role_id = roles.create_role(self.session, name, label or {"en": name, "zh": name})
        roles.set_grants(self.session, role_id, grants, self.registry)
        for object_name, rules in (fields or {}).items():
            roles.set_field_rules(self.session, role_id, self.registry.object(object_name),
                                  rules)
        return name

    def give(self, key: str, *role_names: str) -> Actor:
        """The user holds exactly these roles; returns them as a freshly loaded actor."""
        roles.set_user_roles(self.session, self.user(key), role_names)
        return self.actor(key)

    def grant(self, key: str, operation: str, scope: str, object_name: str = "*",
              also: Mapping[tuple[str, str], str] | None = None) -> Actor:
        """Give user ``key`` one role granting only ``operation`` within ``scope``
        (plus ``also``)."""
        return self.give(key, self.role({(object_name, operation): scope, **(also or {})}))

    def expected(self, object_name: str, scope: str, key: str) -> set[int]:
        return self.org.expected(object_name, scope, key)


def build_crm(session: Session, registry: Registry) -> Crm:
    return Crm(session, registry, build_org(session, registry))


# -- a database holding the organisation, shared by a module's tests ---------------------
@dataclass
class World:
    url: str
    engine: sa.Engine
    registry: Registry
    org: Org


@contextmanager
def world(backend: str, folder: Path) -> Iterator[World]:
    """The sample template and the organisation, committed once."""
    with fresh_database(backend, folder) as url:
        engine = make_engine(url)
        try:
            instance.install(engine, [SAMPLE])
            with Session(engine) as session:
                registry = metastore.load_registry(session)
                found = build_org(session, registry)
                session.commit()
            yield World(url, engine, registry, found)
        finally:
            engine.dispose()


@contextmanager
def rolled_back(w: World) -> Iterator[Crm]:
    """A test's session inside a transaction that is rolled back afterwards."""
    with w.engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield Crm(session, w.registry, w.org)
        finally:
            session.close()
            outer.rollback()


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements run inside the block (conftest's ``count_queries`` for a world)."""
    seen: list[str] = []

    def on(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", on)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", on)
