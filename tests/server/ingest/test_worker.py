"""The ingest worker against a real Mosquitto and both databases, end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select, text

from models.protocol import StatusMessage, device_topic
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.db.models import DeadLetter, Device, Receipt, ReceiptImage
from server.images.local import LocalImageStore
from server.ingest.worker import IngestWorker
from server.settings import IngestSettings, MqttSettings
from tests.conftest import Mosquitto
from tests.server.conftest import Db, Tenant, make_tenant
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic

pytestmark = pytest.mark.mosquitto


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count(db: Db, model) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


class Publisher:
    """A device-side paho client publishing at QoS 1 and waiting for each PUBACK."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


def make_worker(
    broker: Mosquitto, db: Db, store: LocalImageStore, **ingest: object
) -> IngestWorker:
    mqtt_settings = MqttSettings(
        host=broker.host, port=broker.port, protocol=ingest.pop("protocol", "5")
    )
    settings = IngestSettings.model_validate(
        {"client_id": "ingest-test", "batch_max_wait_ms": 20, **ingest}
    )
    return IngestWorker(mqtt_settings, settings, db.sessions, store)


@pytest.fixture
def worker_factory(
    db: Db, store: LocalImageStore, mosquitto: Mosquitto
) -> Iterator[Callable[..., IngestWorker]]:
    started: list[IngestWorker] = []

    def factory(**ingest: object) -> IngestWorker:
        w = make_worker(mosquitto, db, store, **ingest)
        w.start()
        assert w.wait_subscribed(10), "ingest did not subscribe"
        started.append(w)
        return w

    yield factory
    for w in started:
        w.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_receipts_images_duplicates_and_bad_input_end_to_end(
    db: Db, tenant: Tenant, publisher: Publisher, worker_factory, protocol: str
):
    group = "ingest" if protocol == "5" else None
    worker = worker_factory(protocol=protocol, shared_group=group)
    dev = tenant.device_id
    img_early, img_late = jpeg_bytes(1), jpeg_bytes(2)
    early = receipt_message(image=img_early)
    late = receipt_message(image=img_late)
    plain = [receipt_message() for _ in range(20)]

    publisher.publish(image_topic(dev, early.receipt_id), img_early)  # image before its receipt
    publisher.publish(receipt_topic(dev), early.to_json())
    publisher.publish(receipt_topic(dev), late.to_json())
    for m in plain:
        publisher.publish(receipt_topic(dev), m.to_json())
    publisher.publish(receipt_topic(dev), plain[0].to_json())  # redelivered by the device
    publisher.publish(image_topic(dev, late.receipt_id), img_late)  # image after its receipt
    publisher.publish(
        device_topic(dev, "status"), StatusMessage(state="online").to_json(), retain=True
    )
    bad = {
        "malformed_json": (receipt_topic(dev), b"{oops"),
        "unsupported_schema": (
            receipt_topic(dev),
            receipt_message().to_json().replace(b'"schema":"1.0"', b'"schema":"9.0"'),
        ),
        "too_large": (receipt_topic(dev), b"x" * (2 << 20)),
        "invalid_payload": (receipt_topic(dev), b'{"schema": "1.0"}'),
        "invalid_image": (image_topic(dev, uuid.uuid4()), b"\xff\xd8\xff truncated"),
        "unknown_device": (receipt_topic("ghost-7"), receipt_message().to_json()),
    }
    for topic, payload in bad.values():
        publisher.publish(topic, payload)

    wait_until(lambda: count(db, DeadLetter) >= len(bad), what="dead letters")
    wait_until(lambda: count(db, Receipt) == 22 and count(db, ReceiptImage) == 2, what="rows")
    wait_until(lambda: worker.stats.duplicates == 1, what="the duplicate")
    with db.sessions() as s:
        codes = sorted(s.scalars(select(DeadLetter.code)))
        dev_row = s.scalar(select(Device).where(Device.device_id == dev))
        assert dev_row is not None
        assert dev_row.online
    assert codes == sorted(bad)
    assert worker.stats.receipts == 22


def test_a_worker_killed_before_commit_gets_its_messages_again(
    db: Db,
    tenant: Tenant,
    store: LocalImageStore,
    mosquitto: Mosquitto,
    publisher: Publisher,
    tmp_path: Path,
):
    client_id = "ingest-crashy"
    env = {
        **os.environ,
        "RM_DATABASE_URL": db.url,
        "RM_MQTT__PORT": str(mosquitto.port),
        "RM_INGEST__CLIENT_ID": client_id,
        "RM_INGEST__BATCH_SIZE": "1000",
        "RM_INGEST__BATCH_MAX_WAIT_MS": "600000",  # holds everything, never commits
        "RM_IMAGE_STORE__ROOT": str(tmp_path / "img"),
    }
    log = mosquitto.log_path
    proc = subprocess.Popen(
        [sys.executable, "-c", "from models.cli import main; main()", "ingest"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: f"Received SUBSCRIBE from {client_id}" in log.read_text(), 30, "subscribe"
        )
        msgs = [receipt_message() for _ in range(5)]
        for m in msgs:
            publisher.publish(receipt_topic(tenant.device_id), m.to_json())
        wait_until(
            lambda: log.read_text().count(f"Sending PUBLISH to {client_id}") >= 5, what="delivery"
        )
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert count(db, Receipt) == 0

    worker = make_worker(mosquitto, db, store, client_id=client_id)
    worker.start()
    try:
        wait_until(lambda: count(db, Receipt) == 5, what="redelivered receipts")
    finally:
        worker.stop()
    with db.sessions() as s:
        assert set(s.scalars(select(Receipt.id))) == {m.receipt_id for m in msgs}


def test_a_database_failure_is_retried_and_loses_nothing(
    pg_url: str, store: LocalImageStore, mosquitto: Mosquitto, publisher: Publisher
):
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    db = Db(pg_url, engine, session_factory(engine))
    tenant = make_tenant(db, "Flaky", "flaky-1")
    worker = make_worker(mosquitto, db, store, retry_max_backoff_s=0.5)
    worker.start()
    try:
        assert worker.wait_subscribed(10)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE receipts RENAME TO receipts_away"))
        msgs = [receipt_message() for _ in range(3)]
        for m in msgs:
            publisher.publish(receipt_topic(tenant.device_id), m.to_json())
        wait_until(lambda: worker.stats.retries >= 2, what="retries")
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE receipts_away RENAME TO receipts"))
        wait_until(lambda: count(db, Receipt) == 3, what="receipts after recovery")
        assert count(db, DeadLetter) == 0
    finally:
        worker.stop()
        engine.dispose()
