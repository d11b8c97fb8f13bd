"""Run the benchmarks: ``python -m bench`` or ``python bench/run.py``.

For each database: the create benchmark on an empty instance, the single-write one (one
record per transaction against a plain ORM) on its own, then for each size a fresh
instance seeded with that many opportunities, on which the list, request-path, HTTP and
schema benchmarks run in that order (the schema one changes the table, so it is last).
The permission-scope benchmark seeds its own instance (an org chart, scoped customers)
at the largest size, 100k with --quick; the flows benchmark (stage moves, kanban,
approval inbox, badges) its own with the stage processes installed, at 100k (10k with
--quick), and so does the reminder benchmark (a manager's 今日需联系 page and count).
The nightly benchmark seeds 1M contracts (20k with --quick, or --nightly-size) and runs
the reminders job over them: one INSERT … SELECT per rule, timed against hand-written Core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    create_bench,
    flows_bench,
    http_bench,
    lines_bench,
    list_bench,
    nightly_bench,
    path_bench,
    reminder_bench,
    schema_bench,
    scope_bench,
    seed,
    single_write_bench,
)
from bench.common import (  # noqa: E402
    FLOWS,
    SAMPLE,
    Instance,
    database,
    install_instance,
    timed,
)
from bench.report import Recorder  # noqa: E402

BENCHES = ("create", "single", "lines", "list", "path", "http", "schema", "scope", "flows",
           "reminder", "nightly")
UNSIZED = ("create", "single", "lines", "scope", "flows", "reminder", "nightly")  # own seeds
QUICK_SCOPE_SIZE = 100_000
FLOWS_SIZE, QUICK_FLOWS_SIZE = 100_000, 10_000
NIGHTLY_SIZE, QUICK_NIGHTLY_SIZE = 1_000_000, 20_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="opportunity rows per sized run, comma-separated")
    parser.add_argument("--quick", action="store_true",
                        help="10k rows only, fewer repetitions: a smoke run")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"benchmarks to run, comma-separated ({', '.join(BENCHES)})")
    parser.add_argument("--nightly-size", type=int, default=None,
                        help=f"contracts for the nightly benchmark (default {NIGHTLY_SIZE:,}, "
                             f"{QUICK_NIGHTLY_SIZE:,} with --quick)")
    args = parser.parse_args(argv)
    args.sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    args.scope_size = QUICK_SCOPE_SIZE if args.quick else max(args.sizes)
    args.flows_size = QUICK_FLOWS_SIZE if args.quick else FLOWS_SIZE
    args.nightly_size = args.nightly_size or (QUICK_NIGHTLY_SIZE if args.quick else NIGHTLY_SIZE)
    args.only = [b for b in args.only.split(",") if b]
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


class Volumes:
    """Repetitions and volumes: full, or small for --quick."""

    def __init__(self, quick: bool):
        self.list_repeat = 10 if quick else 30
        self.create_count = 10_000 if quick else 100_000
        self.single_writes = 300 if quick else 2_000  # per round, one transaction each
        self.single_repeat = 3 if quick else 5
        self.lines_quotes = 1_000 if quick else 10_000
        self.http_requests = 400 if quick else 2000
        self.path_requests = 100 if quick else 500
        self.scope_repeat = 10 if quick else 30
        self.flows_repeat = 10 if quick else 30
        self.flows_moves = 50 if quick else 500
        self.reminder_repeat = 10 if quick else 30
        self.nightly_rounds = 3 if quick else 5  # each a whole job run over the table


def guarded(rec: Recorder, bench: str, fn: Callable[[], object]) -> object:
    """One benchmark's crash is reported as a failure; the others still run."""
    try:
        return fn()
    except Exception as exc:  # report it and go on
        traceback.print_exc()
        rec.check(bench, "ran without error", False, note=f"{type(exc).__name__}: {exc}"[:200])
        return None


def sized_run(inst: Instance, rec: Recorder, size: int, cfg: Volumes, only: list[str],
              workdir: Path) -> dict[str, float]:
    """The benchmarks that need ``size`` seeded rows; returns times to compare across sizes."""
    rec.add("setup", f"seed {size:,} opportunities (bulk load)",
            timed(lambda: seed.populate(inst, size)), "s", note=str(inst.counts))
    out: dict[str, float] = {}
    if "list" in only:
        guarded(rec, "list", lambda: list_bench.fresh_statistics(inst, rec))
    seed.analyze(inst)
    if "list" in only:
        page1 = guarded(rec, "list", lambda: list_bench.run(inst, rec, cfg.list_repeat))
        if page1 is not None:
            out["list page 1"] = page1
    if "path" in only:
        guarded(rec, "path", lambda: path_bench.run(inst, rec, workdir, cfg.path_requests))
    if "http" in only:
        guarded(rec, "http", lambda: http_bench.run(inst, rec, workdir, cfg.http_requests))
    if "schema" in only:
        added = guarded(rec, "schema", lambda: schema_bench.run(inst, rec, workdir))
        if added is not None:
            out["add field"] = added
    return out


def compare_sizes(rec: Recorder, times: dict[int, dict[str, float]]) -> None:
    """Latency at the largest size against the smallest: flat, not proportional to rows."""
    small, large = min(times), max(times)
    if small == large:
        return
    rec.size = large
    for name, target in (("list page 1", "<= 2"), ("add field", None)):
        if name in times[small] and name in times[large]:
            rec.add("scale", f"{name}: {large:,} rows / {small:,} rows",
                    times[large][name] / times[small][name], "x", target,
                    note="" if target else "information", key=True)


def own_instance(kind: str, workdir: Path, rec: Recorder, name: str, size: int | None,
                 install: Callable[[str], Instance], run: Callable[[Instance], None]) -> None:
    """One benchmark that seeds its own data, in a throwaway database of its own."""
    rec.size = size
    with database(kind, workdir) as url:
        inst = install(url)
        try:
            guarded(rec, name, lambda: run(inst))
        finally:
            inst.engine.dispose()


def run_database(kind: str, args: argparse.Namespace, cfg: Volumes, rec: Recorder,
                 workdir: Path) -> None:
    rec.db = kind
    # name -> (size reported, how its database is installed, the benchmark)
    unsized: dict[str, tuple[int | None, Callable[[str], Instance],
                             Callable[[Instance], None]]] = {
        "create": (None, install_instance,
                   lambda inst: create_bench.run(inst, rec, cfg.create_count)),
        "single": (None, lambda url: single_write_bench.install(url, workdir),
                   lambda inst: single_write_bench.run(inst, rec, cfg.single_writes,
                                                       cfg.single_repeat)),
        "lines": (None, install_instance,
                  lambda inst: lines_bench.run(inst, rec, cfg.lines_quotes)),
        "scope": (args.scope_size, install_instance,
                  lambda inst: scope_bench.run(inst, rec, args.scope_size, cfg.scope_repeat)),
        "flows": (args.flows_size, lambda url: install_instance(url, (SAMPLE, FLOWS)),
                  lambda inst: flows_bench.run(inst, rec, args.flows_size, cfg.flows_repeat,
                                               cfg.flows_moves)),
        "reminder": (args.flows_size, install_instance,
                     lambda inst: reminder_bench.run(inst, rec, args.flows_size,
                                                     cfg.reminder_repeat)),
        "nightly": (args.nightly_size, install_instance,
                    lambda inst: nightly_bench.run(inst, rec, args.nightly_size,
                                                   cfg.nightly_rounds)),
    }
    for name in UNSIZED:
        if name in args.only:
            own_instance(kind, workdir, rec, name, *unsized[name])
    sized = [b for b in args.only if b not in UNSIZED]
    if not sized:
        return
    times: dict[int, dict[str, float]] = {}
    for size in args.sizes:
        rec.size = size
        with database(kind, workdir) as url:
            inst = install_instance(url)
            try:
                times[size] = sized_run(inst, rec, size, cfg, sized, workdir)
            finally:
                inst.engine.dispose()
    compare_sizes(rec, times)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = Volumes(args.quick)
    rec = Recorder()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="metacrm-bench-") as tmp:
        for kind in kinds:
            run_database(kind, args, cfg, rec, Path(tmp))
    print(rec.summary())
    path = rec.write_json({"db": args.db, "sizes": args.sizes, "quick": args.quick,
                           "only": args.only})
    print(f"results: {path}")
    failed = [r for r in rec.results if r.passed is False]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
