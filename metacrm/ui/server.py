"""Serving the app with gunicorn: the same server in `make run` and in the benchmarks."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from metacrm.ui.app import create_app


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app()


def serve(host: str, port: int, workers: int = 2, threads: int = 4) -> None:
    _Gunicorn({"bind": f"{host}:{port}", "workers": workers, "threads": threads,
               "accesslog": "-", "timeout": 60}).run()
