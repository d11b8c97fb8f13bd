"""Migrations of the system tables: they build what systables.py describes, and an instance
of the previous release upgrades with every record, user, version and approval intact.

When test_migrations_to_head_build_what_systables_describe fails, systables.py changed
without a revision: write one (``upgrades.new_revision("what changed")`` drafts it from
the differences this test prints).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import Operations
from click.testing import CliRunner
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from metacrm.cli import main
from metacrm.engine import demo, instance, upgrades
from metacrm.engine.access import users
from metacrm.engine.db import make_engine, writer
from metacrm.engine.schema import metastore
from metacrm.engine.systables import sys_user, system_metadata

from conftest import SAMPLE, SAMPLE_FLOWS, fresh_database


def _context(conn: sa.Connection) -> MigrationContext:
    # The version table is Alembic's, not systables.py's.
    return MigrationContext.configure(conn, opts={
        "compare_type": True, "version_table": upgrades.VERSION_TABLE,
        "include_name": lambda name, kind, _parent: name != upgrades.VERSION_TABLE})


def test_migrations_to_head_build_what_systables_describe(database_url):
    engine = make_engine(database_url)
    upgrades.upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(_context(conn), system_metadata)
        wanted = render_python_code(produce_migrations(_context(conn), system_metadata)
                                    .upgrade_ops)
    engine.dispose()
    assert differences == [], f"systables.py needs a revision doing:\n{wanted}"


def _layout(engine: sa.Engine) -> dict[str, dict]:
    """Everything the database says of each table (what the comparison above cannot see
    too: PostgreSQL's serial defaults, partial indexes' conditions)."""
    found = {}
    with engine.connect() as conn:
        look = sa.inspect(conn)
        for name in sorted(set(look.get_table_names()) - {upgrades.VERSION_TABLE}):
            found[name] = {
                "columns": [{**c, "type": repr(c["type"])} for c in look.get_columns(name)],
                "primary_key": look.get_pk_constraint(name)["constrained_columns"],
                "foreign_keys": sorted((fk["constrained_columns"], fk["referred_table"],
                                        fk["referred_columns"], fk["options"])
                                       for fk in look.get_foreign_keys(name)),
                "indexes": sorted(({**i, "dialect_options": {  # a partial index's condition
                    k: str(v) for k, v in i.get("dialect_options", {}).items()}}
                    for i in look.get_indexes(name)), key=lambda i: i["name"] or ""),
                "unique": sorted(u["column_names"] for u in look.get_unique_constraints(name)),
            }
    return found


def test_migrations_build_what_create_all_builds(backend, tmp_path):
    layouts = []
    for build in (upgrades.upgrade, system_metadata.create_all):
        (tmp_path / build.__name__).mkdir()
        with fresh_database(backend, tmp_path / build.__name__) as url:
            engine = make_engine(url)
            build(engine)
            layouts.append(_layout(engine))
            engine.dispose()
    assert layouts[0] == layouts[1]


# -- an instance of the previous release ---------------------------------------------------
@pytest.fixture
def cli(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("METACRM_DATABASE_URL", database_url)
    monkeypatch.setenv("METACRM_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("METACRM_REDIS_URL", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def _back_to_before_migrations(engine: sa.Engine) -> None:
    """The layout of the release before migrations: every revision after the baseline
    undone, and no version table."""
    script = upgrades.scripts()
    with writer(engine).begin() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "version_table": upgrades.VERSION_TABLE, "script": script,
            "fn": lambda rev, _context: script._downgrade_revs(upgrades.BASELINE, rev)})
        with Operations.context(ctx):
            ctx.run_migrations()
        conn.execute(sa.text(f"DROP TABLE {upgrades.VERSION_TABLE}"))


def _contents(engine: sa.Engine) -> dict[str, list[dict]]:
    """Every row of every table but the version table, in primary key order."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in
                         conn.execute(sa.select(t).order_by(*t.primary_key))]
                for t in meta.sorted_tables if t.name != upgrades.VERSION_TABLE}


def _as_before(rows: list[dict], before: list[dict]) -> list[dict]:
    """The rows as the columns of the earlier release read them (a new column is null)."""
    old = before[0].keys() if before else set()
    assert all(value is None for row in rows for key, value in row.items() if key not in old)
    return [{k: v for k, v in row.items() if k in old} for row in rows]


@pytest.fixture
def previous_release(cli, database_url, monkeypatch) -> Iterator[sa.Engine]:
    """An instance of the release before migrations: the sample template and flows, and
    what ``metacrm demo`` adds (the demo company, records, pending approvals; not its
    ANALYZE, which on a shared PostgreSQL waits for other tests' tables), and an API token.
    The demo company's passwords get a cheap hash, as in conftest's ``people``."""
    monkeypatch.setattr(users, "generate_password_hash",
                        lambda password: generate_password_hash(password, "pbkdf2:sha256:1"))
    assert cli("init", "--template", str(SAMPLE), "--template", str(SAMPLE_FLOWS)).exit_code == 0
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        registry = metastore.load_registry(session)
        admin = users.load_actor(session, session.execute(
            sa.select(sys_user.c.id).where(sys_user.c.username == "admin")).scalar_one())
        assert admin is not None
        owners = [admin.user_id, *demo.populate_org(session)]
        demo.populate(session, registry, admin, per_object=5, owners=owners)
        assert demo.populate_approvals(session, registry)
        users.issue_token(session, admin)
    _back_to_before_migrations(engine)
    assert upgrades.state(engine).legacy
    yield engine
    engine.dispose()


def test_an_instance_before_migrations_upgrades_with_its_data_intact(previous_release, cli):
    before = _contents(previous_release)
    assert all(before[t] for t in ("sys_user", "meta_version", "sys_approval",
                                   "sys_approval_task", "sys_api_token", "o_opportunity"))
    result = cli("upgrade")
    assert result.exit_code == 0, result.output
    assert (f"system tables upgraded from revision {upgrades.BASELINE} to {upgrades.head()}"
            in result.output)
    assert upgrades.state(previous_release).at_head
    after = _contents(previous_release)
    assert {t: _as_before(after[t], before[t]) for t in before} == before
    assert all(not after[t] for t in after.keys() - before.keys())  # new tables start empty


def test_an_outdated_instance_is_refused_with_what_to_do(previous_release, cli):
    result = cli("user", "create", "--username", "li", "--password", "long-enough")
    assert result.exit_code == 1
    assert "run 'metacrm upgrade'" in result.output
    with pytest.raises(upgrades.SystemSchemaOutdated, match="run 'metacrm upgrade'"):
        instance.ensure_system_tables(previous_release)


def test_a_database_from_a_newer_metacrm_is_refused(database_url):
    engine = make_engine(database_url)
    instance.ensure_system_tables(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {upgrades.VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(upgrades.SystemSchemaOutdated, match="newer metacrm"):
        upgrades.upgrade(engine)
    engine.dispose()


def test_upgrading_an_instance_at_head_changes_nothing(cli):
    cli("init")
    result = cli("upgrade")
    assert result.exit_code == 0
    assert result.output.splitlines() == [f"system tables at revision {upgrades.head()}, "
                                          "up to date", "the object tables are up to date"]


def test_the_revisions_ship_with_the_package():
    root = Path(upgrades.__file__).parent
    assert (root / "migrations" / "script.py.mako").exists()
    assert upgrades.scripts().get_revision(upgrades.BASELINE).down_revision is None


def test_the_app_refuses_to_start_on_an_outdated_instance(previous_release, database_url,
                                                           tmp_path):
    from metacrm.config import Settings
    from metacrm.ui.app import create_app

    settings = Settings(database_url=database_url, secret_key="test-secret",
                        instance_dir=tmp_path / "instance", testing=True)
    with pytest.raises(upgrades.SystemSchemaOutdated, match="run 'metacrm upgrade'"):
        create_app(settings, engine=previous_release)
