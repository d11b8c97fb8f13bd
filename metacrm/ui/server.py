"""Serving an app with gunicorn: the same server in `make run` and in the benchmarks.

Without Redis, ``metacrm run`` also runs the due background jobs: a thread in each web
worker, started after gunicorn forks it (a process forked while a thread holds a lock
can hang, so never in the master). Several workers' threads asking at once is safe:
each slot's run is claimed once in the database. With Redis, ``metacrm worker`` does it.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    """gunicorn with options given in code; each worker builds its own app."""

    def __init__(self, factory: Callable[[], Flask], options: dict):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.factory()


def _run_jobs_in_background(worker) -> None:
    from metacrm.engine.jobs.in_process import Background
    from metacrm.ui.runtime import Runtime

    runtime: Runtime = worker.wsgi.extensions["metacrm"]
    Background(runtime.engine).start()


def serve(host: str, port: int, workers: int = 2, threads: int = 4,
          factory: Callable[[], Flask] | None = None, background_jobs: bool = False) -> None:
    if factory is None:
        from metacrm.ui.app import create_app as factory
    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
               "accesslog": "-", "timeout": 60}
    if background_jobs:
        options["post_worker_init"] = _run_jobs_in_background
    _Gunicorn(factory, options).run()
