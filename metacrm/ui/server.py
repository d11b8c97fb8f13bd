"""Serving an app with gunicorn: the same server in `make run` and in the benchmarks."""

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


def serve(host: str, port: int, workers: int = 2, threads: int = 4,
          factory: Callable[[], Flask] | None = None) -> None:
    if factory is None:
        from metacrm.ui.app import create_app as factory
    _Gunicorn(factory, {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                        "accesslog": "-", "timeout": 60}).run()
