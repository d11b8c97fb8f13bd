"""Measurements: one printed line each as they come, a summary table and a JSON file."""

from __future__ import annotations

import json
import operator
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COMPARE = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass
class Result:
    db: str
    size: int | None
    bench: str
    metric: str
    value: float
    unit: str
    target: str | None = None  # e.g. "<= 1.5"
    passed: bool | None = None
    note: str = ""
    key: bool = False  # shown in the summary even without a target

    def line(self) -> str:
        size = f"{self.size:>8,}" if self.size is not None else " " * 8
        verdict = ""
        if self.target is not None:
            verdict = f"  target {self.target:<10} {'PASS' if self.passed else 'FAIL'}"
        note = f"  ({self.note})" if self.note else ""
        return (f"[{self.db:<8} {size}] {self.bench:<7} {self.metric:<44} "
                f"{_fmt(self.value):>10} {self.unit:<6}{verdict}{note}")


def _fmt(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def source_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "metacrm")
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}" + (" + local changes"
                                                                      if dirty else "")


class Recorder:
    """Collects results for one run; the context (db, size) is set by the runner."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.db = ""
        self.size: int | None = None
        self.started = time.time()

    def add(self, bench: str, metric: str, value: float, unit: str = "",
            target: str | None = None, note: str = "", key: bool = False) -> Result:
        passed = None
        if target is not None:
            op, bound = target.split()
            passed = bool(COMPARE[op](round(value, 6), float(bound)))
        result = Result(self.db, self.size, bench, metric, value, unit, target, passed, note,
                        key)
        self.results.append(result)
        print(result.line(), flush=True)
        return result

    def check(self, bench: str, metric: str, ok: bool, note: str = "") -> Result:
        """A yes/no property (1 = holds), shown with the ratios."""
        return self.add(bench, metric, 1.0 if ok else 0.0, "bool", "== 1", note)

    def summary(self) -> str:
        rows = [r for r in self.results if r.target is not None or r.key]
        head = f"{'db':<8} {'size':>9}  {'bench':<7} {'measure':<44} {'value':>10}  " \
               f"{'target':<10} result"
        lines = ["", "SUMMARY (ratios and checks against the targets; info: no target)", head,
                 "-" * len(head)]
        for r in rows:
            size = f"{r.size:,}" if r.size is not None else "-"
            verdict = "info" if r.passed is None else "PASS" if r.passed else "FAIL"
            lines.append(f"{r.db:<8} {size:>9}  {r.bench:<7} {r.metric:<44} "
                         f"{_fmt(r.value):>10}  {r.target or '-':<10} {verdict}")
        checked = [r for r in rows if r.passed is not None]
        failed = sum(1 for r in checked if not r.passed)
        lines.append(f"{len(checked) - failed} passed, {failed} failed, "
                     f"{time.time() - self.started:.0f} s, {source_version()}, "
                     f"load average {os.getloadavg()[0]:.1f}")
        return "\n".join(lines)

    def write_json(self, options: dict) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = RESULTS_DIR / f"bench-{stamp}.json"
        payload = {"started": stamp, "seconds": round(time.time() - self.started, 1),
                   "options": options, "python": sys.version.split()[0],
                   "machine": platform.platform(), "cpus": os.cpu_count(),
                   "source": source_version(), "load_average": os.getloadavg(),
                   "results": [asdict(r) for r in self.results]}
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return path
