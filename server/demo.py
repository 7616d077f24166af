"""`receipts demo`: the whole system in one process on the embedded defaults.

An in-process MQTT broker (`server.broker`), SQLite, a local image store, the ingest worker, the
job worker that reads photos uploaded on the dashboard, the
API and a simulated scanner (the real agent with a watched-folder source) that reads the sample
receipts copied into its inbox. Everything lives under one folder (`.demo/` by default), so a
second run picks up where the first stopped; `--fresh` starts over.

The demo creates an owner account for the dashboard (its password is kept in the demo folder and
printed at start) and an API token; everything else is the production code path.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import uvicorn
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from server.api.app import create_app
from server.broker import EmbeddedBroker
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.store import LocalImageStoreConfig, build_image_store
from server.ingest.worker import IngestWorker
from server.organizations.repository import OrganizationRepository
from server.organizations.service import add_device, create_organization, create_token
from server.settings import IngestSettings, MqttSettings, Settings

log = logging.getLogger(__name__)

ORG_NAME = "Demo Shop"
DEVICE_ID = "demo-scanner"
OWNER_EMAIL = "owner@demo.example"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _sample_images(count: int) -> Iterator[Path]:
    """Real receipts from ../shared/datasets when this checkout sits beside it."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sroie-train" / "img"
    if shared.is_dir():
        yield from sorted(shared.glob("*.jpg"))[:count]


def _seed_samples(inbox: Path, count: int, done: Path) -> int:
    """Copy up to `count` sample receipts into the inbox (once per demo folder)."""
    if done.exists() or count <= 0:
        return 0
    copied = 0
    for src in _sample_images(count):
        shutil.copy2(src, inbox / f"sample-{src.name}")
        copied += 1
    if copied == 0:
        copied = _synthetic_samples(inbox, count)
    done.write_text(f"{copied}\n")
    return copied


def _synthetic_samples(inbox: Path, count: int) -> int:
    """Generated receipts, where the real samples are not at hand."""
    import cv2

    from models.synth import generate_receipt

    for seed in range(count):
        sample = generate_receipt(seed)
        bgr = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(inbox / f"synthetic-{seed:03d}.jpg"), bgr)
    return count


def _demo_secret(path: Path) -> str:
    """A random secret kept in the demo folder (0600), made on the first run."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _ensure_organisation(sessions: sessionmaker[Session], owner_password: str) -> str:
    """The demo organisation, its owner and scanner (created once) and a fresh API token."""
    from server.accounts import service as accounts
    from server.accounts.repository import AccountRepository
    from server.accounts.roles import Role

    with sessions.begin() as session:
        repo = OrganizationRepository(session)
        if repo.get_by_name(ORG_NAME) is None:
            create_organization(session, ORG_NAME)
        if repo.get_device(DEVICE_ID) is None:
            add_device(session, ORG_NAME, DEVICE_ID)
        if AccountRepository(session).user_by_email(OWNER_EMAIL) is None:
            accounts.create_user_in(session, ORG_NAME, OWNER_EMAIL, owner_password, Role.OWNER)
        return create_token(session, ORG_NAME, "demo").token


def _agent_config(data_dir: Path, mqtt_port: int) -> object:
    from edge_agent.config import parse_config

    return parse_config(
        {
            "device_id": DEVICE_ID,
            "broker": {"host": "127.0.0.1", "port": mqtt_port},
            "source": {"type": "folder", "path": "inbox", "poll_interval_s": 0.5, "settle_s": 0.5},
            "outbox": {"path": "outbox.sqlite3"},
            "telemetry": {"interval_s": 15},
        },
        base_dir=data_dir,
        origin="demo",
    )


@click.command()
@click.option(
    "--dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Folder holding the demo's database, images, inbox and outbox.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web server.")
@click.option("--port", default=8000, show_default=True, help="Port of the web server.")
@click.option(
    "--mqtt-port", default=1884, show_default=True, help="Port of the embedded MQTT broker."
)
@click.option("--samples", default=8, show_default=True, help="Sample receipts to start with.")
@click.option("--fresh", is_flag=True, help="Delete the demo folder first.")
def demo(
    *, data_dir: Path, host: str, port: int, mqtt_port: int, samples: int, fresh: bool
) -> None:
    """Run broker, server, ingest and a scanner on embedded defaults; print the URL to open."""
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir = data_dir.resolve()
    inbox = data_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for what, p in (("web server", port), ("MQTT broker", mqtt_port)):
        if not _port_free(host if what == "web server" else "127.0.0.1", p):
            raise click.ClickException(
                f"port {p} for the {what} is taken; choose another with "
                f"--{'port' if what == 'web server' else 'mqtt-port'}"
            )

    owner_password = _demo_secret(data_dir / "owner-password.txt")
    settings = Settings(
        secret_key=SecretStr(_demo_secret(data_dir / "secret-key.txt")),
        database_url=f"sqlite:///{data_dir / 'receipts.db'}",
        mqtt=MqttSettings(host="127.0.0.1", port=mqtt_port, protocol="3.1.1"),
        ingest=IngestSettings(client_id="rm-demo-ingest"),
        image_store=LocalImageStoreConfig(root=data_dir / "images"),
    )
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    images = build_image_store(settings.image_store)
    token = _ensure_organisation(sessions, owner_password)

    broker = EmbeddedBroker("127.0.0.1", mqtt_port)
    broker.start()
    worker = IngestWorker(settings.mqtt, settings.ingest, sessions, images)
    worker.start()

    from edge_agent.agent import Agent

    agent = Agent(_agent_config(data_dir, mqtt_port))  # type: ignore[arg-type]
    agent_thread = threading.Thread(target=agent.run, name="demo-agent", daemon=True)
    agent_thread.start()
    seeded = _seed_samples(inbox, samples, data_dir / ".samples-copied")

    app = create_app(settings, engine=engine, images=images)
    from server.jobs.handlers import build_job_worker
    from server.observability.jobs import JobMetrics

    # photos uploaded on the dashboard are read by this worker (its metrics on the API's /metrics)
    jobs = build_job_worker(settings, sessions, images, JobMetrics(app.state.metrics.registry))
    jobs.start()
    from server.webhooks.metrics import WebhookMetrics
    from server.webhooks.worker import WebhookWorker

    # webhooks registered in the demo are delivered from here (private addresses allowed)
    hooks = WebhookWorker(
        settings.webhooks,
        sessions,
        allow_private=settings.webhooks.private_allowed(settings.environment),
        metrics=WebhookMetrics(app.state.metrics.registry),
    )
    hooks.start()
    url = f"http://{host}:{port}/"
    click.echo(
        "\n".join(
            [
                "",
                "Receipt Manager demo",
                f"  open            {url}",
                f"  sign in as      {OWNER_EMAIL}",
                f"  password        {owner_password}",
                f"  API             {url}api/v1/receipts",
                f"  API token       {token}",
                f"  try             curl -H 'Authorization: Bearer {token}' {url}api/v1/receipts",
                f"  scanner inbox   {inbox}  ({seeded} sample receipts copied in)",
                f"  MQTT broker     127.0.0.1:{mqtt_port}",
                "  stop            Ctrl-C",
                "",
            ]
        )
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        agent.stop()
        agent_thread.join(timeout=15)
        jobs.stop()
        hooks.stop()
        worker.stop()
        broker.stop()
        engine.dispose()
