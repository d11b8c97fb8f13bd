"""Fixtures: every database test runs on SQLite and on PostgreSQL, each in a fresh database.

PostgreSQL tests get a schema of their own (fast to create, dropped afterwards). Under
CI=true an unreachable PostgreSQL or Redis fails the run; elsewhere those tests skip
with one summary line.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine import instance, job_catalogue, write_hooks
from metacrm.engine.access import users
from metacrm.engine.actor import Actor
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.engine.schema.registry import Registry
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import records

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "object_defs" / "sample"
SAMPLE_FLOWS = ROOT / "flows" / "sample"
POSTGRES_URL = os.environ.get("METACRM_TEST_POSTGRES_URL",
                              "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("METACRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_problem() -> str | None:
    try:
        engine = make_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {str(exc).splitlines()[0]}"
    return None


def _redis_problem() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis unreachable at {REDIS_URL}: {exc}"
    return None


SERVICE_PROBLEMS: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    write_hooks.install()
    job_catalogue.install()
    SERVICE_PROBLEMS["postgres"] = _postgres_problem()
    SERVICE_PROBLEMS["redis"] = _redis_problem()
    missing = [p for p in SERVICE_PROBLEMS.values() if p]
    if missing and ON_CI:
        raise pytest.UsageError("CI=true and a service is missing: " + "; ".join(missing))


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"services: {name} {'ok' if not problem else 'MISSING'}"
            for name, problem in SERVICE_PROBLEMS.items()]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    missing = [p for p in SERVICE_PROBLEMS.values() if p]
    if missing:
        terminalreporter.write_line("services missing, their tests were skipped: "
                                    + "; ".join(missing), yellow=True)


def require(service: str) -> None:
    problem = SERVICE_PROBLEMS.get(service)
    if problem:
        if ON_CI:
            pytest.fail(problem)
        pytest.skip(problem)


# -- databases ------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    if request.param == "postgres":
        require("postgres")
    return request.param


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database of the backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'test.db'}"
        return
    require("postgres")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def export_install_export(engine: sa.Engine, backend: str, folder: Path,
                          same: Callable[[sa.Engine], object]) -> tuple[Path, Path]:
    """Export ``engine``'s template, install it into a fresh database of the backend and
    export that: asserts ``same`` sees both instances alike and both exports hold the same
    files byte for byte; returns the two folders."""
    from metacrm.engine.schema.template_export import export_template

    first, second = folder / "first", folder / "second"
    export_template(engine, first)
    (folder / "fresh").mkdir()
    with fresh_database(backend, folder / "fresh") as url:
        fresh = make_engine(url)
        try:
            instance.install(fresh, [first])
            export_template(fresh, second)
            assert same(fresh) == same(engine)
        finally:
            fresh.dispose()
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_text() == (second / name).read_text(), name
    return first, second


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def bare_engine(database_url: str) -> Iterator[sa.Engine]:
    """A database with the system tables only."""
    engine = make_engine(database_url)
    instance.ensure_system_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: sa.Engine) -> sa.Engine:
    """A database with the sample template installed."""
    instance.install(bare_engine, [SAMPLE])
    return bare_engine


@pytest.fixture
def registry(engine: sa.Engine) -> Registry:
    with Session(engine) as session:
        return metastore.load_registry(session)


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def admin(engine: sa.Engine) -> Actor:
    with Session(engine) as s, s.begin():
        user_id = users.create_user(s, "admin", "admin-password", is_admin=True)
        return users.load_actor(s, user_id)


@pytest.fixture
def make_record(session: Session, registry: Registry, admin: Actor) -> Callable[..., dict]:
    def make(object_name: str, *, actor: Actor = admin, **values) -> dict:
        row = records.create(session, registry, object_name, values, actor=actor)
        session.commit()
        return row

    return make


# -- an organisation shared by a module's permission tests ------------------------------
@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, tmp_path_factory):
    """The sample template and the org chart of tests/orgchart.py, built once per module."""
    import orgchart  # imports this module: loaded here, not at the top

    with orgchart.world(request.param, tmp_path_factory.mktemp("org")) as w:
        yield w


@pytest.fixture
def crm(world):
    """A test's view of the world, inside a transaction rolled back afterwards."""
    import orgchart

    with orgchart.rolled_back(world) as c:
        yield c


# -- stage processes and approval flows -------------------------------------------------------
@pytest.fixture
def flows_engine(bare_engine: sa.Engine) -> sa.Engine:
    """The sample template with its stage processes and approval flows. A module whose
    tests need them overrides ``engine`` with this: ``engine = flows_engine``-style."""
    instance.install(bare_engine, [SAMPLE, SAMPLE_FLOWS])
    return bare_engine


@pytest.fixture
def people(engine: sa.Engine, admin: Actor, monkeypatch) -> dict[str, Actor]:
    """The demo company (metacrm demo): 王经理 ``wang`` (sales manager, head of 销售部),
    reps ``zhang``, ``li``, ``zhao`` reporting to him, ``qian`` (finance); password
    ``demo-password``; plus ``admin``. Their passwords get a cheap hash: five slow ones
    would be most of each test's time, and signing in checks any hash the same way."""
    from werkzeug.security import generate_password_hash

    from metacrm.engine import demo

    monkeypatch.setattr(users, "generate_password_hash",
                        lambda password: generate_password_hash(password, "pbkdf2:sha256:1"))
    with Session(engine) as s, s.begin():
        demo.populate_org(s)
    with Session(engine) as s:
        ids = dict(s.execute(sa.select(sys_user.c.username, sys_user.c.id)).all())
        return {name: users.load_actor(s, user_id) for name, user_id in ids.items()}


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample template, for tests that change definitions."""
    target = tmp_path / "template"
    shutil.copytree(SAMPLE, target)
    return target


# -- web --------------------------------------------------------------------------------
@pytest.fixture
def app(engine: sa.Engine, database_url: str, tmp_path: Path):
    from metacrm.ui.app import create_app

    settings = Settings(database_url=database_url, secret_key="test-secret",
                        metadata_poll_seconds=0, instance_dir=tmp_path / "instance",
                        testing=True)
    return create_app(settings, engine=engine)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Browser:
    """A signed-in test client that posts forms with their CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = ""

    def get(self, url: str, **kw):
        response = self.client.get(url, **kw)
        html = response.get_data(as_text=True)
        if 'name="csrf_token"' in html:
            self.token = csrf_of(html)
        return response

    def post(self, url: str, data: dict | None = None, **kw):
        if not self.token:
            self.get("/login")
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kw)

    def text(self, url: str, **kw) -> str:
        response = self.get(url, **kw)
        assert response.status_code == 200, (url, response.status_code)
        return response.get_data(as_text=True)


def signed_in(app, username: str, password: str) -> Browser:
    browser = Browser(app.test_client())
    response = browser.post("/login", {"username": username, "password": password})
    assert response.status_code == 302
    browser.get("/", follow_redirects=True)  # signing in starts a new session and token
    return browser


@pytest.fixture
def web(app, admin) -> Browser:
    return signed_in(app, "admin", "admin-password")


@pytest.fixture
def english(web) -> Browser:
    web.post("/language", {"language": "en", "next": "/"})
    return web


@pytest.fixture
def english_admin(engine: sa.Engine, admin: Actor) -> Actor:
    """The admin reads English: the web pages and the API answer in it."""
    with Session(engine) as s, s.begin():
        users.set_language(s, admin, "en")
    return admin


class ApiClient:
    """The Flask test client with a bearer token and JSON helpers."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, url: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def patch(self, url, **kw):
        return self.request("PATCH", url, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)


@pytest.fixture
def client_of(app, people):
    """A bearer-token API client per demo user, by username."""
    clients: dict[str, ApiClient] = {}

    def client(username: str) -> ApiClient:
        if username not in clients:
            http = app.test_client()
            response = http.post("/api/v1/auth/token", json={"username": username,
                                                             "password": "demo-password"})
            assert response.status_code == 200, response.get_json()
            clients[username] = ApiClient(http, response.get_json()["token"])
        return clients[username]

    return client


@pytest.fixture
def api(app, english_admin: Actor) -> ApiClient:
    """The admin's API client; he reads English (scripts do), so refusals are asserted in
    English; a test of the Chinese wording signs in a Chinese reader."""
    client = app.test_client()
    response = client.post("/api/v1/auth/token",
                           json={"username": "admin", "password": "admin-password"})
    assert response.status_code == 200, response.get_json()
    return ApiClient(client, response.get_json()["token"])


@pytest.fixture
def anonymous(app) -> ApiClient:
    return ApiClient(app.test_client(), None)


@pytest.fixture
def count_queries(engine: sa.Engine):
    """Counts the SQL statements run inside the ``with`` block."""

    class Counter:
        def __init__(self):
            self.statements: list[str] = []

        def __enter__(self):
            sa.event.listen(engine, "before_cursor_execute", self._on)
            return self

        def __exit__(self, *exc):
            sa.event.remove(engine, "before_cursor_execute", self._on)

        def _on(self, conn, cursor, statement, parameters, context, executemany):
            self.statements.append(statement)

        @property
        def count(self) -> int:
            return len(self.statements)

    return Counter


@pytest.fixture
def rendering_queries(app, engine: sa.Engine):
    """The SQL statements run while a template renders, inside the ``with`` block: Flask
    signals when a render starts and ends, after the view has read what the page shows."""
    from flask import before_render_template, template_rendered

    @contextmanager
    def count() -> Iterator[list[str]]:
        seen: list[str] = []
        rendering = [False]

        def started(sender, **kw):
            rendering[0] = True

        def finished(sender, **kw):
            rendering[0] = False

        def on(conn, cursor, statement, parameters, context, executemany):
            if rendering[0]:
                seen.append(statement)

        before_render_template.connect(started, app)
        template_rendered.connect(finished, app)
        sa.event.listen(engine, "before_cursor_execute", on)
        try:
            yield seen
        finally:
            sa.event.remove(engine, "before_cursor_execute", on)
            template_rendered.disconnect(finished, app)
            before_render_template.disconnect(started, app)

    return count


@pytest.fixture
def redis_url(engine) -> Iterator[str]:
    """Redis for the test's database; its keys are removed afterwards."""
    require("redis")
    yield REDIS_URL
    with Session(engine) as session:
        database = metastore.instance_id(session)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{database}*"):
        client.delete(key)
    for registry in ("rq:queues", "rq:workers"):  # rq's lists of every queue and worker
        client.srem(registry, *[m for m in client.smembers(registry) if database.encode() in m]
                    or [b""])
