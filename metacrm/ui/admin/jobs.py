"""Admin → Jobs (后台任务): each background job with its last run and next due time,
the runs newest first, Retry of a failed run and Run now of a job.

Both queue a run in the database first; with Redis it then goes on rq (after the
commit, so the worker finds it), without Redis it runs here, in the request: jobs are
set-based, a run takes moments.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from redis import RedisError

from metacrm import clock
from metacrm.engine.jobs import catalogue, on_redis, overview, runs
from metacrm.metadata.labels import Label
from metacrm.ui.context import actor, unit_of_work
from metacrm.ui.runtime import db, registry, runtime

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
PAGE = 50
LAST_PAGE = 10_000  # as the record lists: a larger page would overflow the SQL OFFSET


@bp.get("/")
def index():
    page = min(max(1, request.args.get("page", 1, type=int)), LAST_PAGE)
    found, more = overview.page_of_runs(db(), page, PAGE)
    labels = {j.name: j.label for j in catalogue.jobs()}
    now = clock.now()
    return render_template("admin/jobs.html", jobs=overview.summaries(db(), now), now=now,
                           runs=found, more=more, page=page, labels=labels,
                           count_labels=_count_labels(), slot_text=_slot_text,
                           zone=clock.zone(), on_redis=bool(runtime().settings.redis_url))


def _count_labels() -> dict[str, Label]:
    """What the keys of the runs' counts mean: the jobs' own, and each reminder rule's
    label for its key (the reminder notifications count per rule)."""
    found = {key: text for j in catalogue.jobs() for key, text in j.count_labels.items()}
    found.update((r.key, r.rule.label) for r in registry().reminders.values())
    return found


def _slot_text(slot: str) -> str:
    """A run's slot as the admin reads it: a Run now says so; an instant, kept in UTC
    (so that every scheduler names it alike), shows in the instance's zone."""
    if slot.startswith("manual:"):
        return _("by hand")
    try:
        at = dt.datetime.strptime(slot, "%Y-%m-%dT%H:%MZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return slot  # a day: already as the admin reads it
    return at.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M")


@bp.post("/runs/<int:run_id>/retry")
def retry(run_id: int):
    with unit_of_work() as session:
        run = runs.row(session, run_id)
        if run is None:
            abort(404)
        retried = runs.retry(session, run_id, actor().user_id)
    if not retried:
        flash(_("Only a failed run can be retried."), "warning")
    else:
        _start(run_id, run["attempt"], run["name"])
    return redirect(url_for(".index"))


@bp.post("/<name>/run")
def run_now(name: str):
    if catalogue.job(name) is None:
        abort(404)
    with unit_of_work() as session:
        run_id = runs.run_now(session, name, actor().user_id)
    _start(run_id, 0, name)
    return redirect(url_for(".index"))


def _start(run_id: int, attempt: int, name: str) -> None:
    """The queued run on rq, or done now when there is no Redis; what became of it is
    flashed."""
    settings, engine = runtime().settings, runtime().engine
    if settings.redis_url:
        try:
            on_redis.for_engine(engine, settings.redis_url).push([(run_id, attempt, name)])
        except RedisError:  # still queued: the scheduler's next round puts it on rq
            pass
        flash(_("The run is queued; a worker will do it shortly."), "success")
    elif runs.perform(engine, run_id) == "done":
        flash(_("The run is done."), "success")
    else:
        flash(_("The run failed; its error is shown below."), "danger")
