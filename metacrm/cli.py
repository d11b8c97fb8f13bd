"""The ``metacrm`` command."""

from __future__ import annotations

import secrets
import sys
from contextlib import nullcontext

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metacrm import clock
from metacrm.config import Settings
from metacrm.engine import demo as demo_data
from metacrm.engine import instance, job_catalogue, upgrades, write_hooks
from metacrm.engine.access import users
from metacrm.engine.db import make_engine, refresh_statistics, writer
from metacrm.engine.errors import SchemaChangeRefused, ValidationFailed
from metacrm.engine.jobs import in_process, on_redis, overview, runs
from metacrm.engine.schema import changes, metastore
from metacrm.engine.schema.template_export import ExportRefused, export_template
from metacrm.engine.schema.version_signal import VersionSignal
from metacrm.engine.systables import sys_user
from metacrm.engine.writing import rollups
from metacrm.metadata.problems import DefinitionError
from metacrm.metadata.templates import load_paths


def _engine(upgrade: bool = False):
    """The instance's engine, its system tables at the head revision: created in a new
    database, upgraded when asked for, otherwise refused with what to do."""
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    try:
        if upgrade:
            before, after = upgrades.upgrade(engine)
            click.echo(f"system tables created at revision {after}" if before is None
                       else f"system tables at revision {after}, up to date" if before == after
                       else f"system tables upgraded from revision {before} to {after}")
        instance.ensure_system_tables(engine)
    except upgrades.SystemSchemaOutdated as exc:
        _fail([str(exc)])
    return settings, engine


def _fail(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(1)


@click.group(help="metacrm: a metadata-driven CRM platform.")
def main() -> None:
    write_hooks.install()
    job_catalogue.install()


def _install(engine, paths: list[str]) -> None:
    try:
        settings = Settings.from_env()
        signal = VersionSignal(settings.redis_url) if settings.redis_url else None
        version = instance.install(engine, paths, actor="cli", signal=signal)
    except DefinitionError as exc:
        _fail([str(p) for p in exc.problems] + [f"{len(exc.problems)} problem(s); "
                                                "nothing was installed"])
    except SchemaChangeRefused as exc:
        _fail([c.describe() for c in exc.changes] + ["the schema was not changed"])
    click.echo(f"installed {', '.join(paths)} as metadata version {version}")


def _ensure_admin(settings: Settings, engine) -> None:
    password_file = settings.instance_dir / "initial_admin_password"
    with Session(engine) as session, session.begin():
        if session.execute(select(func.count()).select_from(sys_user)).scalar():
            if password_file.exists():
                click.echo(f"admin user: admin, password: {password_file.read_text().strip()} "
                           f"(from {password_file})")
            return
        password = secrets.token_urlsafe(12)
        users.create_user(session, "admin", password, is_admin=True, display_name="管理员")
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    click.echo(f"created admin user: admin, password: {password}")


@main.command(help="Create the database tables, install templates and the first admin.")
@click.option("--template", "templates", multiple=True, type=click.Path(exists=True),
              help="A template folder to install (repeatable).")
def init(templates: tuple[str, ...]) -> None:
    settings, engine = _engine(upgrade=True)
    if templates:
        _install(engine, list(templates))
    else:
        changes.apply_schema(engine)
    _ensure_admin(settings, engine)


@main.command(help="Upgrade this instance's database to this metacrm: the system tables "
                   "by their migrations, then the object tables by the schema plan. Back "
                   "the database up first.")
def upgrade() -> None:
    _, engine = _engine(upgrade=True)
    try:
        planned = changes.apply_schema(engine)
    except SchemaChangeRefused as exc:
        _fail([c.describe() for c in exc.changes] + ["the object tables were not changed"])
    for line in planned.describe() or ["the object tables are up to date"]:
        click.echo(line)


@main.command(help="Fill every object with demo records (skipped when records exist).")
@click.option("--per-object", default=200, show_default=True)
@click.option("--force", is_flag=True, help="Add records even if some exist.")
def demo(per_object: int, force: bool) -> None:
    _, engine = _engine()
    registry = metastore.RegistryCache(engine).get()
    with Session(engine) as session, session.begin():
        existing = sum(session.execute(select(func.count()).select_from(registry.table(o)))
                       .scalar() for o in registry.active_objects)
        if existing and not force:
            click.echo(f"demo data skipped: {existing} records exist (use --force)")
            return
        admin = session.execute(select(sys_user.c.id).where(sys_user.c.username == "admin")
                                ).scalar()
        actor = users.load_actor(session, admin) if admin else None
        if actor is None:
            _fail(["no admin user: run 'metacrm init' first"])
        owners = [actor.user_id]
        if not session.execute(select(sys_user.c.id).where(sys_user.c.username == "wang")
                               ).first():
            owners += demo_data.populate_org(session)
        created = demo_data.populate(session, registry, actor, per_object=per_object,
                                     owners=owners)
        if registry.approval_flows:
            created["approvals"] = demo_data.populate_approvals(session, registry)
    refresh_statistics(engine)
    click.echo("demo records: " + ", ".join(f"{k} {v}" for k, v in created.items()))


@main.command(help="Serve the web app and API. Without METACRM_REDIS_URL each web worker "
                   "also runs the due background jobs in a thread.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=2, show_default=True)
def run(host: str, port: int, workers: int) -> None:
    from metacrm.ui.server import serve

    # A new database is created once, here, not by each worker; an outdated one refused.
    settings, engine = _engine()
    engine.dispose()
    click.echo(f"metacrm on http://{host}:{port}")
    serve(host, port, workers, background_jobs=not settings.redis_url)


@main.command(help="Run background jobs on Redis (METACRM_REDIS_URL): an rq worker and "
                   "the scheduler, which queues each job's due run once, however many "
                   "schedulers run.")
@click.option("--burst", is_flag=True, help="Queue what is due, do what is queued, then exit.")
@click.option("--no-scheduler", is_flag=True,
              help="The worker only (further processes or machines).")
def worker(burst: bool, no_scheduler: bool) -> None:
    settings, engine = _engine()
    if not settings.redis_url:
        _fail(["metacrm worker needs Redis: set METACRM_REDIS_URL (e.g. "
               "redis://127.0.0.1:6379/0); without Redis, run 'metacrm jobs run-due' "
               "from cron, or let 'metacrm run' run the jobs"])
    on_redis.work(engine, settings.redis_url, burst=burst, scheduler=not no_scheduler)


@main.group(help="Background jobs: their runs, and running them without Redis.")
def jobs() -> None:
    pass


@jobs.command("list", help="Each job: its schedule, last run and next due time.")
def jobs_list() -> None:
    _, engine = _engine()
    with Session(engine) as session:
        found = overview.summaries(session, clock.now())
    for s in found:
        last = s.last
        ran = (f"last run {last['slot']} {last['status']}" + (f" {last['counts']}" if
               last["status"] == "done" else f": {last['error']}" if last["error"] else "")
               if last else "never run")
        due = s.next_due.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{s.job.name}: {s.job.schedule.describe()}; {ran}; next due {due}")


@jobs.command("run-due", help="Run the due jobs here, without Redis (for cron: every few "
                                "minutes). Each run happens once however often it is asked.")
@click.option("--at", "at", metavar="TIMESTAMP",
              help="Run as at this ISO date-time (naive: in METACRM_TIMEZONE).")
def jobs_run_due(at: str | None) -> None:
    _, engine = _engine()
    try:
        with clock.frozen(at) if at else nullcontext():
            done = in_process.run_due(engine)
    except ValueError as exc:
        _fail([f"--at: {exc}"])
    with Session(engine) as session:
        for run_id, status in done:
            if status is not None:
                run = runs.row(session, run_id) or {}
                click.echo(f"{run.get('name')} {run.get('slot')}: {status} "
                           f"{run.get('counts') if status == 'done' else run.get('error')}")
    click.echo(f"{sum(1 for _, s in done if s)} run(s)")


@jobs.command("run", help="Run a job now, here, in a slot of its own.")
@click.argument("name")
def jobs_run(name: str) -> None:
    _, engine = _engine()
    try:
        with Session(writer(engine)) as session, session.begin():
            run_id = runs.run_now(session, name, None)
    except LookupError:
        _fail([f"no job named {name!r}; see 'metacrm jobs list'"])
    status = runs.perform(engine, run_id)
    with Session(engine) as session:
        run = runs.row(session, run_id) or {}
    if status != "done":
        _fail([f"{name}: {status}: {run.get('error')}"])
    click.echo(f"{name}: done {run.get('counts')}")


@main.command(help="Check template files; every problem is listed, exit 1 if any.")
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    try:
        templates = load_paths(paths)
    except DefinitionError as exc:
        _fail([str(p) for p in exc.problems] + [f"{len(exc.problems)} problem(s)"])
    click.echo(f"ok: {len(templates.documents)} document(s)")


@main.group(help="Install and manage templates.")
def template() -> None:
    pass


@template.command("install", help="Install or upgrade a template folder.")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def template_install(directory: str) -> None:
    _, engine = _engine()
    _install(engine, [directory])


@template.command("export", help="Write the current objects, fields, picklists, business "
                                  "types, layouts, stage processes, approval flows and "
                                  "roles as a template folder.")
@click.argument("directory", type=click.Path(file_okay=False))
def template_export(directory: str) -> None:
    _, engine = _engine()
    try:
        written = export_template(engine, directory)
    except ExportRefused as exc:
        _fail([str(exc)])
    click.echo(f"exported {len(written)} file(s) to {directory}")


@main.group(help="Plan and apply the database schema for the metadata.")
def schema() -> None:
    pass


@schema.command("plan", help="Show the changes the metadata needs; changes nothing.")
def schema_plan() -> None:
    _, engine = _engine()
    planned = changes.plan_schema(engine)
    for line in planned.describe() or ["the schema is up to date"]:
        click.echo(line)
    if planned.refused:
        sys.exit(1)


@schema.command("apply", help="Apply the planned changes (all or nothing).")
def schema_apply() -> None:
    _, engine = _engine()
    try:
        planned = changes.apply_schema(engine)
    except SchemaChangeRefused as exc:
        _fail([c.describe() for c in exc.changes] + ["nothing was changed"])
    for line in planned.describe() or ["the schema is up to date"]:
        click.echo(line)


@main.command(help="Recompute a formula or roll-up field for every record, e.g. "
                   "contract.received_amount (after fixing data outside metacrm).")
@click.argument("target", metavar="OBJECT.FIELD")
def recompute(target: str) -> None:
    object_name, _, field_name = target.partition(".")
    _, engine = _engine()
    with Session(engine) as session, session.begin():
        registry = metastore.load_registry(session)
        obj = registry.objects.get(object_name)
        f = obj.all_fields.get(field_name) if obj is not None else None
        if f is None or not f.computed:
            _fail([f"{target}: not a formula or roll-up field"])
        count = rollups.rebuild(session.connection(), registry, obj, field_name)
    click.echo(f"recomputed {target} for {count} record(s)")


@main.group(help="Manage users.")
def user() -> None:
    pass


@user.command("create", help="Create a user.")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--admin", is_flag=True)
def user_create(username: str, password: str, admin: bool) -> None:
    _, engine = _engine()
    try:
        with Session(engine) as session, session.begin():
            user_id = users.create_user(session, username, password, is_admin=admin)
    except ValidationFailed as exc:
        _fail([f"{k}: {v}" for k, v in exc.fields.items()])
    click.echo(f"created user {username} (id {user_id})")


if __name__ == "__main__":  # pragma: no cover
    main()


