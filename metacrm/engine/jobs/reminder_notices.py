"""The reminder notifications job: the items of the reminder rules with ``notify`` that
have come due, one notification per recipient (the rules and their one INSERT … SELECT
each are in ``flows.reminders``). Every quarter of an hour, so an item due today that a
rep adds at ten is announced before lunch; the dedupe key makes every later run, and a
run again after a crash, notify nobody twice."""

from __future__ import annotations

from metacrm.engine.flows import reminders
from metacrm.engine.jobs.catalogue import Every, JobDef
from metacrm.metadata.labels import Label

__all__ = ["REMINDER_NOTICES"]

REMINDER_NOTICES = JobDef("reminders", Label(en="Reminder notifications", zh="待办提醒通知"),
                          Every(15), reminders.notify_due)
