"""The jobs this instance runs: the catalogue of background jobs, in order.

Each feature names its job (a ``JobDef``); this module alone lists them and installs
them, so a new background job (pool recycling, reminder notifications, import purges)
is one more entry in ``CATALOGUE``. ``METACRM_JOB_MODULES`` names further modules
(comma-separated, importable) whose ``JOBS`` join the catalogue: a consultant's jobs,
or the tests'. ``install()`` runs once per process, from the app factory, the command
line (and so ``metacrm worker``, whose work horses inherit it) and the tests.
"""

from __future__ import annotations

import importlib
import os

from metacrm.engine.jobs import catalogue, housekeeping, reminder_notices

__all__ = ["CATALOGUE", "install"]

CATALOGUE: tuple[catalogue.JobDef, ...] = (
    reminder_notices.REMINDER_NOTICES,  # every 15 minutes: reminder items come due
    housekeeping.HOUSEKEEPING,  # nightly: expired sessions, old runs, old read notifications
)


def extra_jobs() -> list[catalogue.JobDef]:
    """The ``JOBS`` of the modules METACRM_JOB_MODULES names."""
    names = [n.strip() for n in os.environ.get("METACRM_JOB_MODULES", "").split(",")]
    return [entry for name in names if name
            for entry in importlib.import_module(name).JOBS]


def install() -> None:
    catalogue.install([*CATALOGUE, *extra_jobs()])
