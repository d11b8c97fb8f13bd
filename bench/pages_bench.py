"""Every generated page answers in under 300 ms with 10k records per object.

Seeds the sample template through the records service (demo values), signs in through
the login form and times each main page server-side, through the whole Flask stack.
Run: ``python -m bench.pages_bench [--db sqlite|postgres|both] [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine import demo, instance
from metacrm.engine.access import users
from metacrm.engine.db import make_engine
from metacrm.engine.schema import metastore
from metacrm.ui.app import create_app

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://root@127.0.0.1:5432/test"
TARGET_MS = 300
PASSWORD = "bench-password"


def seeded_engine(db: str, records: int, folder: Path) -> tuple[sa.Engine, str, str | None]:
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{folder / 'pages.db'}"
    else:
        schema = f"bench_pages_{uuid.uuid4().hex[:8]}"
        with make_engine(POSTGRES).begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    instance.install(engine, [ROOT / "object_defs" / "sample"])
    with Session(engine) as session, session.begin():
        user_id = users.create_user(session, "bench", PASSWORD, is_admin=True)
        demo.populate(session, metastore.load_registry(session),
                      users.load_actor(session, user_id), per_object=records, batch=2000)
    return engine, url, schema


def signed_in_client(app):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"csrf_token": token, "username": "bench",
                                           "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def pages(records: int) -> dict[str, str]:
    middle = records // 2
    won = json.dumps([["stage", "in", ["won", "negotiation"]], ["amount", "gte", 10000]])
    return {
        "list customer (default view)": "/o/customer",
        "list opportunity filtered+sorted": f"/o/opportunity?filter={won}&sort=-amount",
        "list contact keyword search": "/o/contact?q=%E7%8E%8B",  # 王
        "list opportunity 'mine' view, 100/page": "/o/opportunity?view=mine&page_size=100",
        "detail customer (related lists, history)": f"/o/customer/{middle}",
        "detail opportunity with prev/next": f"/o/opportunity/{middle}?view=all&sort=-amount",
        "edit form customer": f"/o/customer/{middle}/edit",
        "new form contact (lookup prefilled)": f"/o/contact/new?customer={middle}",
        "recycle bin": "/o/customer/recycle-bin",
        "lookup type-ahead": "/o/customer/lookup?q=%E5%8D%8E",  # 华
    }


def measure(client, url: str, repeat: int) -> tuple[float, float]:
    for _ in range(3):
        assert client.get(url).status_code == 200, url
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, url
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


def run(db: str, records: int, repeat: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        engine, url, schema = seeded_engine(db, records, folder)
        print(f"[{db}] seeded {records} records per object in "
              f"{time.perf_counter() - started:.0f} s")
        settings = Settings(database_url=url, secret_key="bench", instance_dir=folder,
                            metadata_poll_seconds=1.0)
        client = signed_in_client(create_app(settings, engine=engine))
        results = []
        for name, page_url in pages(records).items():
            median, p95 = measure(client, page_url, repeat)
            results.append((name, median, p95))
            verdict = "PASS" if p95 < TARGET_MS else "FAIL"
            print(f"[{db}] {name:<42} median {median:6.1f} ms  p95 {p95:6.1f} ms  {verdict}")
        engine.dispose()
        if schema:
            with make_engine(POSTGRES).begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    worst = 0.0
    for db in (("sqlite", "postgres") if args.db == "both" else (args.db,)):
        worst = max(worst, *(p95 for _, _, p95 in run(db, args.records, args.repeat)))
    print(f"slowest p95: {worst:.1f} ms (target < {TARGET_MS} ms): "
          f"{'PASS' if worst < TARGET_MS else 'FAIL'}")


if __name__ == "__main__":
    main()
