"""The records service's hook catalogue: what runs on a write, in which phase and order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import write_hooks
from metacrm.engine.errors import PermissionDenied
from metacrm.engine.writing import hooks, records
from metacrm.engine.writing.hooks import Hook

WRITING = Path(__file__).resolve().parent.parent / "metacrm" / "engine" / "writing"
FEATURES = ("flows", "writing.lines", "writing.rollups", "write_hooks")


def test_the_catalogue_lists_every_hook_in_its_phase_and_order():
    assert [(h.phase, h.name) for h in hooks.installed()] == [
        ("guard", "approvals.lock"),
        ("before_validate", "lines.take"),
        ("before_validate", "approvals.outcome_fields"),
        ("before_validate", "stages.managed_fields"),
        ("before_validate", "stages.business_type_change"),
        ("before_write", "lines.deleted_at"),
        ("before_write", "stages.first_stage"),
        ("after_write", "stages.history"),
        ("after_write", "lines.write"),
        ("after_write", "rollups.refresh"),
        ("after_write", "automations.run"),
        ("after_write", "approvals.field_change"),
    ]


def test_phases_follow_each_other_in_the_catalogue():
    order = [hooks.PHASES.index(h.phase) for h in write_hooks.CATALOGUE]
    assert order == sorted(order)


@pytest.mark.parametrize("module", ["records", "writer", "hooks"])
def test_the_records_core_imports_no_feature(module):
    tree = ast.parse((WRITING / f"{module}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not [name for name in imported for f in FEATURES
                if name.startswith(f"metacrm.engine.{f}")]


def test_hook_names_are_unique():
    with pytest.raises(ValueError, match="repeat"):
        hooks.install((*write_hooks.CATALOGUE, write_hooks.CATALOGUE[0]))
    assert hooks.installed() == write_hooks.CATALOGUE


def test_a_write_before_the_hooks_are_installed_is_refused(session, registry, admin,
                                                           monkeypatch):
    monkeypatch.setattr(hooks, "_catalogue", ())
    with pytest.raises(hooks.HooksNotInstalled):
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)


@pytest.fixture
def extra_hook():
    """Install the catalogue with one more hook; the standard one again afterwards."""
    def install(hook: Hook) -> None:
        hooks.install((*write_hooks.CATALOGUE, hook))

    yield install
    write_hooks.install()


def test_an_after_commit_hook_runs_once_the_write_commits(engine, registry, admin, extra_hook):
    seen: list[tuple[str, int]] = []
    extra_hook(Hook("test.seen", "after_commit", frozenset({"create"}),
                    lambda ctx: seen.append((ctx.obj.name, ctx.rows[0]["id"]))))
    with Session(engine) as session, session.begin():
        row = records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
        assert seen == []  # not before the commit
    assert seen == [("customer", row["id"])]


def test_an_after_commit_hook_never_runs_when_the_write_rolls_back(engine, registry, admin,
                                                                   extra_hook):
    seen: list[int] = []
    extra_hook(Hook("test.seen", "after_commit", frozenset({"create"}),
                    lambda ctx: seen.append(ctx.rows[0]["id"])))
    with Session(engine) as session:
        transaction = session.begin()
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
        transaction.rollback()
        with session.begin():
            records.create(session, registry, "customer", {"name": "Beta"}, actor=admin)
    assert len(seen) == 1
    with Session(engine) as session:
        names = session.execute(sa.select(registry.table("customer").c.name)).scalars().all()
    assert names == ["Beta"]


def test_a_refusal_names_the_hook_that_refused(session, registry, admin, extra_hook):
    def refuse(ctx):
        raise PermissionDenied("no")

    extra_hook(Hook("test.refuse", "before_write", frozenset({"create"}), refuse))
    with pytest.raises(PermissionDenied) as caught:
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
    assert caught.value.hook == "test.refuse"


def test_a_refusal_in_before_write_leaves_nothing_written(engine, registry, admin, extra_hook):
    def refuse(ctx):
        raise PermissionDenied("no")

    extra_hook(Hook("test.refuse", "before_write", frozenset({"create"}), refuse))
    with Session(engine) as session, pytest.raises(PermissionDenied), session.begin():
        records.create(session, registry, "customer", {"name": "Acme"}, actor=admin)
    with Session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(
            registry.table("customer"))).scalar() == 0
