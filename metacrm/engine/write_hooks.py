"""The order in which features join a write: the records service's hook catalogue.

Each feature module names its hooks (``HOOKS``); this module alone puts them in order
and installs them, so ``records`` imports no feature and a new behaviour on a write is
one more entry here; so are the listeners of the approval engine's end event.
``install()`` runs once per process, from the app factory, the
command line, the job worker and the tests.
"""

from __future__ import annotations

from metacrm.engine.flows import approval_rules, approvals, automations, stages
from metacrm.engine.writing import hooks, lines, rollups

__all__ = ["CATALOGUE", "install"]

CATALOGUE: tuple[hooks.Hook, ...] = (
    approval_rules.LOCK,        # guard: a record in approval is locked
    lines.TAKE,             # before_validate: the submitted lines, coerced
    approval_rules.OUTCOME_FIELDS,  # before_validate: what an approval outcome sets is its own
    stages.MANAGED_FIELDS,  # before_validate: stage fields are the stage engine's
    stages.TYPE_CHANGE,     # before_validate: a new business type keeps a stage it has
    lines.DELETED_AT,       # before_write: a restore finds the lines deleted with it
    stages.FIRST_STAGE,     # before_write: a new record starts in its first stage
    stages.HISTORY,         # after_write: the stage history and stage work todos
    lines.WRITE,            # after_write: the lines, before what sums them up
    rollups.REFRESH,        # after_write: roll-ups and the formulas reading them
    automations.RUN,        # after_write: the automations the write triggers
    approvals.FIELD_CHANGE, # after_write: a changed trigger field starts its flow
)


def install() -> None:
    hooks.install(CATALOGUE)
    approvals.on_end(automations.approval_ended)  # an approval's end triggers automations
