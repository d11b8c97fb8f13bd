"""Benchmark 4: requests per second over real HTTP, metacrm against the baseline app.

Both run under gunicorn as subprocesses on 127.0.0.1 with the same workers and threads;
the load comes from keep-alive ``http.client`` connections in threads, a fixed number of
requests per phase. Each phase lists opportunities (filtered, sorted, 50 rows) or
creates one.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench.common import PASSWORD, ROOT, USERNAME, Instance
from bench.list_bench import COLUMNS, FILTER, PAGE_SIZE, SORT
from bench.report import Recorder

WORKERS, THREADS = 2, 4
CONCURRENCY = WORKERS * THREADS
LIST_PATH = "/api/v1/objects/opportunity/records?" + urlencode(
    {"filter": json.dumps(FILTER), "sort": SORT, "page_size": PAGE_SIZE,
     "fields": ",".join(COLUMNS)})
CREATE_PATH = "/api/v1/objects/opportunity/records"
Request = tuple[str, str, bytes | None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_command(port: int) -> list[str]:
    return [sys.executable, "-c", "from metacrm.ui.server import serve; "
            f"serve('127.0.0.1', {port}, workers={WORKERS}, threads={THREADS})"]


def baseline_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.baseline_app", "--port", str(port),
            "--workers", str(WORKERS), "--threads", str(THREADS)]


@contextmanager
def server(command: Callable[[int], list[str]], inst: Instance, workdir: Path,
           name: str) -> Iterator[int]:
    """A gunicorn subprocess on a free port; yields the port once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("METACRM_")}
    env.update(METACRM_DATABASE_URL=inst.url, METACRM_INSTANCE=str(workdir / "instance"),
               METACRM_SECRET_KEY="bench", PYTHONPATH=str(ROOT))
    with open(workdir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, proc, workdir / f"{name}.log")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            call(port, ("GET", "/", None))
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not start; see {log}")


def call(port: int, req: Request, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(req[0], req[1], req[2], headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_token(port: int) -> str:
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    status, data = call(port, ("POST", "/api/v1/auth/token", body),
                        {"Content-Type": "application/json"})
    assert status == 200, data
    return json.loads(data)["token"]


@dataclass
class LoadResult:
    """Requests sent, failures, wall time and latencies of one or more load phases."""

    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.errors += other.errors

    @property
    def rate(self) -> float:
        """Successful requests per second: failed requests are not work done."""
        return (self.requests - len(self.errors)) / self.elapsed

    def note(self) -> str:
        cuts = statistics.quantiles(self.latencies, n=100)
        text = f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"
        if self.errors:
            text += f"; {len(self.errors)} failed, first: {self.errors[0][:120]}"
        return text


def load(port: int, make: Callable[[int], Request], total: int, headers: dict,
         concurrency: int = CONCURRENCY) -> LoadResult:
    """``total`` requests from ``concurrency`` keep-alive connections."""
    lock = threading.Lock()
    counter = iter(range(total))
    result = LoadResult(requests=total)
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body = make(i)
            began = time.perf_counter()
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                result.errors.append(repr(exc))
                continue
            result.latencies.append(time.perf_counter() - began)
            if response.status not in (200, 201):
                result.errors.append(f"{response.status} {data[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - began
    return result


def create_request(customers: int, seed: int) -> Callable[[int], Request]:
    rng = random.Random(seed)
    lock = threading.Lock()

    def make(i: int) -> Request:
        with lock:
            customer, amount = rng.randint(1, customers), rng.randint(100, 10_000_000) / 100
        body = {"name": f"HTTP 商机 {seed}-{i}", "customer": customer, "amount": f"{amount:.2f}",
                "stage": "needs", "close_date": "2026-12-31", "products": ["software"]}
        return "POST", CREATE_PATH, json.dumps(body).encode()

    return make


def _warm(port: int, inst: Instance, headers: dict) -> None:
    status, body = call(port, ("GET", LIST_PATH, None), headers)
    assert status == 200 and len(json.loads(body)["items"]) == PAGE_SIZE, body[:300]
    load(port, lambda i: ("GET", LIST_PATH, None), 100, headers)  # every worker, every thread
    load(port, create_request(inst.counts["customer"], seed=99), 50, headers)


def run(inst: Instance, rec: Recorder, workdir: Path, requests: int, rounds: int = 2) -> None:
    """Both servers up at once; phases alternate between them so drift hits both alike."""
    results = {(who, phase): LoadResult() for who in ("engine", "baseline")
               for phase in ("list", "create")}
    with server(engine_command, inst, workdir, "engine") as engine_port, \
            server(baseline_command, inst, workdir, "baseline") as baseline_port:
        headers = {"Authorization": f"Bearer {get_token(engine_port)}",
                   "Content-Type": "application/json"}
        ports = {"engine": engine_port, "baseline": baseline_port}
        for port in ports.values():
            _warm(port, inst, headers)
        per_round = max(1, requests // rounds)
        for r in range(rounds):
            order = ("engine", "baseline") if r % 2 == 0 else ("baseline", "engine")
            for phase in ("list", "create"):
                for who in order:
                    make = (create_request(inst.counts["customer"], seed=r * 10 + len(who))
                            if phase == "create" else lambda i: ("GET", LIST_PATH, None))
                    results[who, phase].add(load(ports[who], make, per_round, headers))
    for phase in ("list", "create"):
        e, b = results["engine", phase], results["baseline", phase]
        for who, result in (("engine", e), ("baseline", b)):
            rec.add("http", f"{phase} {who} x{result.requests} ({CONCURRENCY} conns)",
                    result.rate, "req/s", note=result.note())
        rec.add("http", f"{phase} engine/baseline req/s", e.rate / b.rate, "x", ">= 0.5")
        rec.check("http", f"{phase}: no failed requests (engine)", not e.errors)
        rec.check("http", f"{phase}: no failed requests (baseline)", not b.errors)
