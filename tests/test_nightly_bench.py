"""The nightly benchmark at a tiny size, so it keeps working as the job evolves: the
reminders job notifies every due item in one INSERT … SELECT per rule, a second run
notifies nobody, and the hand-written baseline stores the same notifications."""

from __future__ import annotations

from bench import nightly_bench
from bench.common import install_instance
from bench.report import Recorder


def test_the_nightly_bench_finds_every_due_item_in_one_statement_per_rule(database_url):
    inst = install_instance(database_url)
    rec = Recorder()
    try:
        nightly_bench.run(inst, rec, 300, rounds=1)
    finally:
        inst.engine.dispose()
    checks = {r.metric: r.passed for r in rec.results if r.unit == "bool" and r.target}
    assert checks and all(checks.values()), checks
    statements = {r.metric: r.value for r in rec.results if r.unit == "stmts"}
    assert statements == {"first run: statements of the job": 6,
                          "second run: statements of the job": 6}
