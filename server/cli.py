"""Server commands of `receipts`: `server` (API), `ingest` (worker), `admin` (registry)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.dead_letters.repository import DeadLetterRepository
from server.organizations import service as orgs
from server.settings import Settings

logger = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Settings from the environment (logging set up by them), or a clean exit naming bad keys."""
    try:
        settings = Settings()
        setup_logging(settings)
        return settings
    except ValidationError as exc:
        problems = "; ".join(
            f"RM_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid server configuration: {problems}") from exc


def setup_logging(settings: Settings) -> None:
    """JSON or text logs, and the rotated log file, as RM_OBSERVABILITY__* say."""
    from models.logs import configure_logging

    obs = settings.observability
    configure_logging(
        obs.log_format,
        log_file=obs.log_file,
        max_bytes=obs.log_max_bytes,
        backup_count=obs.log_backup_count,
    )


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes sharing the port (about one per core). Each keeps its own rate-limit "
    "buckets and database pool.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Migrate the database, then serve the REST API."""
    import uvicorn

    from server.api.app import create_app

    settings = load_settings()
    migrate(settings.database_url)
    logger.info("serving the API on http://%s:%d (%d processes)", host, port, workers)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
    else:  # each worker process builds its app from the same environment
        uvicorn.run(
            "server.cli:app_from_settings",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
        )


def app_from_settings() -> Any:
    """The API app built from the environment's settings (uvicorn's factory for --workers)."""
    from server.api.app import create_app

    return create_app(load_settings())


@click.command("ingest")
def ingest() -> None:
    """Migrate the database, then ingest scanner messages from the broker until stopped."""
    from server.images.store import build_image_store
    from server.ingest.worker import IngestWorker

    settings = load_settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    worker = IngestWorker(
        settings.mqtt,
        settings.ingest,
        session_factory(engine),
        build_image_store(settings.image_store),
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping ingest", signum)
        worker.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    obs = settings.observability
    if obs.ingest_metrics_port:
        from server.observability.metrics import serve_metrics

        worker.metrics.add_database(engine)
        serve_metrics(worker.metrics.registry, obs.ingest_metrics_host, obs.ingest_metrics_port)
        logger.info(
            "metrics on http://%s:%d/metrics", obs.ingest_metrics_host, obs.ingest_metrics_port
        )
    logger.info(
        "ingest %s from %s:%d (MQTT %s)",
        settings.ingest.client_id,
        settings.mqtt.host,
        settings.mqtt.port,
        settings.mqtt.protocol,
    )
    worker.run()


@click.command("jobs")
def jobs() -> None:
    """Migrate the database, then run background jobs (reading uploaded photos) until stopped."""
    from server.images.store import build_image_store
    from server.jobs.handlers import build_job_worker

    settings = load_settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    worker = build_job_worker(
        settings, session_factory(engine), build_image_store(settings.image_store)
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping the job worker after its current job", signum)
        worker.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cfg = settings.jobs
    if cfg.metrics_port:
        from server.observability.metrics import DatabaseMetrics, serve_metrics

        DatabaseMetrics.register(worker.metrics.registry, engine)
        serve_metrics(worker.metrics.registry, cfg.metrics_host, cfg.metrics_port)
        logger.info("metrics on http://%s:%d/metrics", cfg.metrics_host, cfg.metrics_port)
    try:
        worker.run()
    finally:
        engine.dispose()


@click.group("admin")
def admin() -> None:
    """Register organisations, devices and API tokens; inspect dead letters."""


@contextmanager
def _transaction() -> Iterator[Session]:
    settings = load_settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with session_factory(engine).begin() as session:
            yield session
    except orgs.AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


@admin.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create the organisation NAME."""
    with _transaction() as session:
        org = orgs.create_organization(session, name)
        click.echo(f"organisation {org.name} created ({org.id})")


@admin.command("set-plan")
@click.argument("org")
@click.argument("plan")
def set_plan(org: str, plan: str) -> None:
    """Put organisation ORG on PLAN (starter, pro, business, enterprise); releases what fits."""
    from server.accounts.audit import Actor
    from server.organizations.repository import OrganizationRepository
    from server.plans.catalog import Plan
    from server.plans.quota import change_plan

    try:
        parsed = Plan.parse(plan)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="PLAN") from exc
    with _transaction() as session:
        found = OrganizationRepository(session).get_by_name(org)
        if found is None:
            raise click.ClickException(f"no organisation named {org!r}")
        done = change_plan(session, found.id, parsed, Actor.system("cli"))
    click.echo(f"{org}: {done.before.value} -> {done.after.value}, {done.released} released")


@admin.command("release-held")
def release_held() -> None:
    """Release receipts held over monthly quotas that now fit (the ingest worker does it too)."""
    from server.plans.quota import release_due

    with _transaction() as session:
        released = release_due(session)
    click.echo(f"{released} held receipts released")


@admin.command("add-device")
@click.argument("org")
@click.argument("device_id")
def add_device(org: str, device_id: str) -> None:
    """Register scanner DEVICE_ID to organisation ORG."""
    with _transaction() as session:
        orgs.add_device(session, org, device_id)
        click.echo(f"device {device_id} registered to {org}")


@admin.command("create-token")
@click.argument("org")
@click.option("--name", default="", help="A note saying who or what uses the token.")
@click.option(
    "--role",
    default="admin",
    show_default=True,
    help="What the token may do: owner, admin, member or viewer (viewer: read only).",
)
def create_token(org: str, name: str, role: str) -> None:
    """Issue an API token for ORG; it is printed once and only its hash is kept."""
    from server.accounts.roles import Role

    try:
        parsed_role = Role.parse(role)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--role") from exc
    with _transaction() as session:
        issued = orgs.create_token(session, org, name, parsed_role)
    click.echo(issued.token)


@admin.command("dead-letters")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--code", default=None, help="Only this refusal code, e.g. unknown_device.")
def dead_letters(limit: int, code: str | None) -> None:
    """List refused messages, newest first, with their code and reason."""
    with _transaction() as session:
        rows = DeadLetterRepository(session).latest(limit, code)
        for d in rows:
            click.echo(
                f"{d.received_at:%Y-%m-%d %H:%M:%S} {d.code:<22} {d.topic} "
                f"({d.payload_size} B): {d.reason}"
            )
        if not rows:
            click.echo("no dead letters")


@admin.command("create-user")
@click.argument("org")
@click.argument("email")
@click.option("--role", default="owner", show_default=True, help="owner, admin, member or viewer.")
@click.option("--name", default="", help="The person's name.")
@click.password_option(envvar="RM_NEW_USER_PASSWORD", help="Asked for when not given.")
def create_user(org: str, email: str, role: str, name: str, password: str) -> None:
    """Create a dashboard user EMAIL in organisation ORG (the first owner starts here)."""
    from server.accounts import service as accounts
    from server.accounts.roles import Role

    try:
        parsed_role = Role.parse(role)
        with _transaction() as session:
            user = accounts.create_user_in(session, org, email, password, parsed_role, name=name)
            click.echo(f"user {user.email} ({user.role}) created in {org}")
    except (accounts.AccountError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
