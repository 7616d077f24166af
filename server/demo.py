"""`receipts demo`: the whole system in one process on the embedded defaults.

An in-process MQTT broker (`server.broker`), SQLite, a local image store, the ingest worker, the
API and a simulated scanner (the real agent with a watched-folder source) that reads the sample
receipts copied into its inbox. Everything lives under one folder (`.demo/` by default), so a
second run picks up where the first stopped; `--fresh` starts over.

The demo adds one page at `/` that lists the demo organisation's receipts without a login. It is
bound to the loopback address by default and exists only in the demo; the API and everything else
are the production code paths.
"""

from __future__ import annotations

import html
import logging
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from server.api.app import create_app
from server.broker import EmbeddedBroker
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.base import ImageStore
from server.images.store import LocalImageStoreConfig, build_image_store
from server.ingest.worker import IngestWorker
from server.organizations.repository import OrganizationRepository
from server.organizations.service import add_device, create_organization, create_token
from server.receipts.repository import ReceiptFilter, ReceiptRepository
from server.settings import IngestSettings, MqttSettings, Settings

log = logging.getLogger(__name__)

ORG_NAME = "Demo Shop"
DEVICE_ID = "demo-scanner"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


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


def _ensure_organisation(sessions: sessionmaker[Session]) -> str:
    """The demo organisation and scanner (created once) and a fresh API token."""
    with sessions.begin() as session:
        repo = OrganizationRepository(session)
        if repo.get_by_name(ORG_NAME) is None:
            create_organization(session, ORG_NAME)
        if repo.get_device(DEVICE_ID) is None:
            add_device(session, ORG_NAME, DEVICE_ID)
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


def add_demo_page(app: FastAPI, sessions: sessionmaker[Session], images: ImageStore) -> None:
    """The demo's login-free page: the demo organisation's receipts, refreshed every 3 s."""

    def _repo(session: Session) -> ReceiptRepository:
        org = OrganizationRepository(session).get_by_name(ORG_NAME)
        if org is None:
            raise HTTPException(404, "the demo organisation does not exist")
        return ReceiptRepository(session, org.id)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def receipts_page() -> str:
        with sessions() as session:
            records = _repo(session).list(ReceiptFilter(), after=None, limit=200)
            rows = []
            for rec in records:
                r = rec.receipt
                image = (
                    f'<a href="/demo/images/{r.id}"><img src="/demo/images/{r.id}" '
                    'loading="lazy" alt="receipt"></a>'
                    if rec.image is not None
                    else "waiting for image"
                )
                cells = [
                    image,
                    html.escape(r.merchant or "?"),
                    html.escape(str(r.receipt_date or "?")),
                    html.escape(f"{r.total} {r.currency or ''}" if r.total is not None else "?"),
                    "needs review" if r.needs_review else "ok",
                    html.escape(r.captured_at.strftime("%Y-%m-%d %H:%M:%S")),
                ]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        body = "\n".join(rows) or '<tr><td colspan="6">No receipts yet.</td></tr>'
        return _PAGE.format(count=len(rows), rows=body)

    @app.get("/demo/images/{receipt_id}", include_in_schema=False)
    def receipt_image(receipt_id: uuid.UUID) -> Response:
        with sessions() as session:
            rec = _repo(session).get(receipt_id)
            if rec is None or rec.image is None:
                raise HTTPException(404, "no image for this receipt")
            return Response(images.get(rec.image.sha256), media_type=rec.image.content_type)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="3">
<title>Receipt Manager demo</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; vertical-align: top; }}
img {{ max-height: 6rem; }}
</style></head><body>
<h1>Receipt Manager demo</h1>
<p>{count} receipts. Drop receipt photos into the demo's inbox folder; they appear here.
The REST API is at <code>/api/v1/receipts</code>
(bearer token printed by <code>receipts demo</code>).</p>
<table><thead><tr><th>Image</th><th>Merchant</th><th>Date</th><th>Total</th><th>Check</th>
<th>Captured</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""


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

    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'receipts.db'}",
        mqtt=MqttSettings(host="127.0.0.1", port=mqtt_port, protocol="3.1.1"),
        ingest=IngestSettings(client_id="rm-demo-ingest"),
        image_store=LocalImageStoreConfig(root=data_dir / "images"),
    )
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    images = build_image_store(settings.image_store)
    token = _ensure_organisation(sessions)

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
    add_demo_page(app, sessions, images)
    url = f"http://{host}:{port}/"
    click.echo(
        "\n".join(
            [
                "",
                "Receipt Manager demo",
                f"  open            {url}",
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
        worker.stop()
        broker.stop()
        engine.dispose()
