"""Benchmark 5 (and the HTTP statement count of benchmark 1): the warm request path.

The real Flask app runs in-process through its test client, on the bench engine, so
every statement a list request sends is seen (``before_cursor_execute``). A warm request
must run no metadata query: the registry cache may only read the version counter once
per ``metadata_poll_seconds``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.common import (
    METADATA_TABLE,
    PASSWORD,
    USERNAME,
    Instance,
    StatementLog,
    metadata_statements,
)
from bench.http_bench import LIST_PATH
from bench.report import Recorder

VERSION_COUNTER = "meta_state"


def run(inst: Instance, rec: Recorder, workdir: Path, requests: int) -> None:
    from metacrm.config import Settings
    from metacrm.ui.app import create_app

    settings = Settings.from_env(instance_dir=workdir / "instance", database_url=inst.url,
                                 secret_key="bench", redis_url=None)
    client = create_app(settings, engine=inst.engine).test_client()
    token = client.post("/api/v1/auth/token",
                        json={"username": USERNAME, "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(LIST_PATH, headers=headers).status_code == 200  # cold: loads metadata
    log = StatementLog(inst.engine)
    per_request: list[int] = []
    meta: list[str] = []
    began = time.monotonic()
    try:
        for _ in range(requests):
            with log.record() as seen:
                response = client.get(LIST_PATH, headers=headers)
            assert response.status_code == 200, response.data[:300]
            per_request.append(len(seen))
            meta.extend(metadata_statements(seen))
    finally:
        log.close()
    elapsed = time.monotonic() - began
    polls = [s for s in meta if set(METADATA_TABLE.findall(s)) == {VERSION_COUNTER}]
    allowed = int(elapsed / settings.metadata_poll_seconds) + 1
    rec.add("path", "statements per warm HTTP list request (median)",
            statistics.median(per_request), "stmts", "<= 3", note="auth + page + capped count")
    rec.add("path", "statements per warm HTTP list request (max)", max(per_request), "stmts",
            note="information")
    rec.add("path", f"metadata reloads in {requests} warm requests", len(meta) - len(polls),
            "stmts", "<= 0", note="statements on meta_* other than the version counter")
    rec.add("path", "version-counter reads during the warm requests", len(polls), "stmts",
            f"<= {allowed}", note=f"{elapsed:.1f} s; at most one per "
                                  f"{settings.metadata_poll_seconds:g} s")
