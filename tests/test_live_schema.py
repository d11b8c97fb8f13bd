"""Metadata changed live: records keep being written while fields are added, and a second
app process on the same database sees a change on its next request."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.serving import WSGIRequestHandler, make_server

from metacrm.config import Settings
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.ui.app import create_app

from conftest import ApiClient

ADMIN = "/api/v1/admin"
# More clients than the pool's 5 + 10 connections: a request holds one connection at a
# time (the registry is resolved before its session opens), so none waits for a second.
WORKERS = 20
ROUNDS_AFTER = 3  # each client's rounds once the last field is in
NEW_FIELDS = [{"name": "serial_no", "type": "text", "label": {"en": "Serial", "zh": "序列号"}},
              {"name": "weight", "type": "decimal", "label": {"en": "Weight", "zh": "重量"}},
              {"name": "units", "type": "integer", "label": {"en": "Units", "zh": "数量"}},
              {"name": "remark", "type": "textarea", "label": {"en": "Remark", "zh": "备注"}}]
VALUES = {"serial_no": "S-1", "weight": "1.5", "units": 3, "remark": "kept"}


@pytest.fixture
def app_process(database_url: str, tmp_path) -> Iterator[Callable[..., Flask]]:
    """Apps each with an engine and registry cache of their own, as web processes have.
    Without Redis each looks at the database's version on every request; with it, only
    the signal tells them (their poll is an hour)."""
    engines = []

    def make(name: str, redis_url: str | None = None) -> Flask:
        settings = Settings(database_url=database_url, secret_key="s", redis_url=redis_url,
                            metadata_poll_seconds=3600 if redis_url else 0,
                            instance_dir=tmp_path / name, testing=True)
        engines.append(make_engine(database_url))
        return create_app(settings, engine=engines[-1])

    yield make
    for engine in engines:
        engine.dispose()


def field_names(api: ApiClient) -> set[str]:
    """The fields the process's registry knows (the admin API reads the store instead)."""
    return {f["name"] for f in api.get("/api/v1/objects/customer").get_json()["fields"]}


def token_for(client) -> str:
    response = client.post("/api/v1/auth/token", json={"username": "admin",
                                                       "password": "admin-password"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


# -- over real HTTP, many clients at once -------------------------------------------------
class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        """Requests are not logged: the test output stays readable."""


@pytest.fixture
def server(app_process, admin) -> Iterator[str]:
    http = make_server("127.0.0.1", 0, app_process("live"),
                       threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()


class Http:
    """JSON over HTTP with a bearer token: (status, body)."""

    def __init__(self, base: str, token: str = ""):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path, method=method, data=json.dumps(body).encode() if body else None,
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def write_one(http: Http, worker: int, n: int, fields: list[str],
              failures: list[tuple]) -> tuple[int, dict] | None:
    """Create a record, then update it with the fields known to exist: (id, values kept)."""
    status, row = http.call("POST", "/api/v1/objects/gadget/records", {"name": f"w{worker}-{n}"})
    if status != 201:
        failures.append(("create", worker, n, status, row))
        return None
    change = {"name": f"w{worker}-{n}-updated", **{f: VALUES[f] for f in fields if f in VALUES}}
    status, body = http.call("PATCH", f"/api/v1/objects/gadget/records/{row['id']}",
                             {**change, "version": row["version"]})
    if status != 200:
        failures.append(("update", worker, n, status, body))
        return None
    return row["id"], change


class Rounds:
    """Rounds done by the clients, for the admin to wait on (while any client runs)."""

    def __init__(self, clients: int):
        self.done = 0
        self.running = clients
        self.changed = threading.Condition()

    def add(self, count: int = 1, running: int = 0) -> None:
        with self.changed:
            self.done += count
            self.running += running
            self.changed.notify_all()

    def wait_for_more(self, count: int) -> None:
        with self.changed:
            target = self.done + count
            assert self.changed.wait_for(lambda: self.done >= target or not self.running,
                                         timeout=60)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_records_written_while_fields_are_added_are_all_kept(server, engine):
    """10 clients create and update records from before the admin adds 4 fields until
    after; each client writes a new field once its addition has been answered."""
    status, body = Http(server).call("POST", "/api/v1/auth/token",
                                     {"username": "admin", "password": "admin-password"})
    http = Http(server, body["token"])
    status, body = http.call("POST", f"{ADMIN}/objects", {
        "object": "gadget", "label": {"en": "Gadget", "zh": "小工具"}, "features": ["owner"]})
    assert status == 201, body
    added: list[str] = []  # fields whose addition has been answered
    failures: list[tuple] = []
    rounds = Rounds(WORKERS)
    finished = threading.Event()

    def client(worker: int) -> dict[int, dict]:
        kept: dict[int, dict] = {}
        after = 0
        try:
            for n in itertools.count():
                if written := write_one(http, worker, n, list(added), failures):
                    kept[written[0]] = written[1]
                rounds.add()
                after += finished.is_set()
                if after >= ROUNDS_AFTER:
                    return kept
        finally:
            rounds.add(0, running=-1)

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(client, w) for w in range(WORKERS)]
        try:
            for raw in NEW_FIELDS:
                # Rounds in flight began before the last addition, at most one a client;
                # the others began after it, so some records have each number of fields.
                rounds.wait_for_more(2 * WORKERS)
                status, body = http.call("POST", f"{ADMIN}/objects/gadget/fields", raw)
                assert status == 201, body
                added.append(raw["name"])
        finally:
            finished.set()
        expected = {k: v for f in futures for k, v in f.result().items()}
    assert failures == []
    # records were written with each number of new fields; a round that began before the
    # last field was in may lack it, the later ones have them all
    assert {len(c) - 1 for c in expected.values()} >= set(range(len(NEW_FIELDS)))
    complete = sum(len(c) == 1 + len(VALUES) for c in expected.values())
    assert complete >= WORKERS * (ROUNDS_AFTER - 1)
    with Session(engine) as session:
        table = metastore.load_registry(session).table("gadget")
        rows = {r.id: r._mapping for r in session.execute(sa.select(table))}
    assert set(rows) == set(expected)
    for record_id, change in expected.items():
        stored = {k: rows[record_id][k] for k in change}
        if "weight" in change:
            stored["weight"] = str(stored["weight"].normalize())
        assert stored == change, record_id


# -- two app processes on one database ----------------------------------------------------
@pytest.mark.parametrize("signal", ["poll", "redis"])
def test_a_field_added_through_one_process_is_seen_by_another(
        request, app_process, admin, signal):
    redis_url = request.getfixturevalue("redis_url") if signal == "redis" else None
    first = app_process("one", redis_url).test_client()
    second = app_process("two", redis_url).test_client()
    one, two = ApiClient(first, token_for(first)), ApiClient(second, token_for(second))
    assert "wechat" not in field_names(two)  # the second process has cached the metadata
    added = one.post(f"{ADMIN}/objects/customer/fields", json={
        "name": "wechat", "type": "text", "label": {"en": "WeChat", "zh": "微信"}})
    assert added.status_code == 201, added.get_json()
    assert "wechat" in field_names(two)
    response = two.post("/api/v1/objects/customer/records",
                        json={"name": "Acme", "wechat": "acme_cn"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["wechat"] == "acme_cn"
