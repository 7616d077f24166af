"""Server metrics: the API's /metrics (HTTP by route template, pool, fleet) and ingest's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from models.protocol import StatusMessage, Telemetry, device_topic
from server.api.app import create_app
from server.db.engine import create_db_engine
from server.images.local import LocalImageStore
from server.observability.metrics import (
    LATENCY_BUCKETS,
    DatabaseMetrics,
    DeviceSnapshot,
    device_state,
    serve_metrics,
)
from server.settings import Settings
from tests.conftest import Mosquitto, free_tcp_port
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import receipt_message, receipt_topic
from tests.server.ingest.test_worker import Publisher, make_worker, wait_until


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and label set."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


@pytest.fixture
def client(db: Db, store: LocalImageStore) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db.url), engine=db.engine, images=store)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_http_metrics_are_by_route_template_method_and_status(
    client: TestClient, tenant: Tenant
) -> None:
    auth = {"Authorization": f"Bearer {tenant.token}"}
    for _ in range(3):
        assert client.get(f"/api/v1/receipts/{uuid.uuid4()}", headers=auth).status_code == 404
    assert client.get("/api/v1/receipts", headers=auth).status_code == 200
    assert client.get("/api/v1/receipts").status_code == 401
    assert client.get("/no/such/path").status_code == 404
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(client.get("/health").headers["x-request-id"]) == 32

    text = client.get("/metrics").text
    detail = "/api/v1/receipts/{receipt_id}"
    assert value(text, "rm_http_requests_total", method="GET", route=detail, status="404") == 3
    listing = "/api/v1/receipts"
    assert value(text, "rm_http_requests_total", method="GET", route=listing, status="200") == 1
    assert value(text, "rm_http_requests_total", method="GET", route=listing, status="401") == 1
    assert value(text, "rm_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(text, "rm_http_requests_total", method="GET", route="/health", status="200") == 2
    # raw paths never become labels; scrapes are not counted
    routes = {dict(k[1]).get("route") for k in samples(text) if k[0] == "rm_http_requests_total"}
    assert routes == {detail, listing, "unmatched", "/health"}
    assert value(text, "rm_http_request_duration_seconds_count", method="GET", route=detail) == 3
    bounds = {
        float(dict(k[1])["le"])
        for k in samples(text)
        if k[0] == "rm_http_request_duration_seconds_bucket"
    }
    assert bounds == {*map(float, LATENCY_BUCKETS), float("inf")}
    assert value(text, "rm_http_requests_in_progress", method="GET") == 0
    assert value(text, "rm_db_pool_size") is not None
    assert value(text, "rm_db_pool_connections", state="checked_out") == 0
    assert "# TYPE rm_quota_rejections_total counter" in text
    assert value(text, "rm_fleet_devices", state="offline") == 1  # the tenant's scanner


def test_fleet_gauges_come_from_the_devices_latest_telemetry(
    db: Db, store: LocalImageStore, client: TestClient
) -> None:
    make_tenant(db, "Fleet", "scan-a", "scan-b", "scan-c")
    status = StatusMessage(state="online", agent_version="1.4.2", model_versions={"ocr": "7"})
    beat = Telemetry(interval_s=30, outbox_depth=17, last_read_ms=850.0, cpu_temp_c=61.5)
    ingest(
        db,
        store,
        [
            (device_topic("scan-a", "status"), status.to_json()),
            (device_topic("scan-a", "telemetry"), beat.to_json()),
            (device_topic("scan-b", "status"), status.to_json()),
        ],
    )
    text = client.get("/metrics").text
    assert value(text, "rm_fleet_devices", state="online") == 2
    assert value(text, "rm_fleet_devices", state="offline") == 1  # never seen
    assert value(text, "rm_device_outbox_depth", device_id="scan-a") == 17
    assert value(text, "rm_device_inference_seconds", device_id="scan-a") == pytest.approx(0.85)
    assert value(text, "rm_device_cpu_temperature_celsius", device_id="scan-a") == 61.5
    assert value(text, "rm_device_outbox_depth", device_id="scan-b") is None  # no telemetry
    info = value(
        text, "rm_device_info", device_id="scan-b", agent_version="1.4.2", model_version="ocr=7"
    )
    assert info == 1
    seen = value(text, "rm_device_last_seen_timestamp_seconds", device_id="scan-a")
    assert seen is not None and abs(seen - dt.datetime.now(dt.UTC).timestamp()) < 60
    assert value(text, "rm_device_last_seen_timestamp_seconds", device_id="scan-c") is None


def test_device_state_online_stale_offline() -> None:
    now = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)

    def snap(online: bool, ago_s: float | None, interval: float = 30) -> DeviceSnapshot:
        seen = None if ago_s is None else now - dt.timedelta(seconds=ago_s)
        return DeviceSnapshot("d", online, seen, None, None, {"interval_s": interval})

    assert device_state(snap(True, 10), now) == "online"
    assert device_state(snap(True, 89), now) == "online"
    assert device_state(snap(True, 91), now) == "stale"  # three 30 s beats missed
    assert device_state(snap(True, 601, interval=300), now) == "offline"
    assert device_state(snap(False, 1), now) == "offline"  # last will
    assert device_state(snap(True, None), now) == "offline"


def test_failed_database_connections_are_counted(free_port: int) -> None:
    engine = create_db_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{free_port}/none")
    registry = CollectorRegistry()
    DatabaseMetrics.register(registry, engine)
    for _ in range(2):
        with pytest.raises(OperationalError):
            engine.connect()
    assert registry.get_sample_value("rm_db_connection_errors_total") == 2
    engine.dispose()


@pytest.mark.mosquitto
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_ingest_worker_counts_messages_dead_letters_batches_and_lag(
    db: Db, tenant: Tenant, store: LocalImageStore, mosquitto: Mosquitto
) -> None:
    worker = make_worker(mosquitto, db, store)
    worker.metrics.add_database(db.engine)
    port = free_tcp_port()
    stop_http = serve_metrics(worker.metrics.registry, "127.0.0.1", port)
    publisher = Publisher(mosquitto)
    worker.start()
    try:
        assert worker.wait_subscribed(10)
        reg = worker.metrics.registry
        wait_until(lambda: reg.get_sample_value("rm_ingest_broker_connected") == 1)
        old = receipt_message(captured_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40))
        publisher.publish(receipt_topic(tenant.device_id), old.to_json())
        publisher.publish(receipt_topic(tenant.device_id), old.to_json())  # redelivered
        publisher.publish(receipt_topic(tenant.device_id), receipt_message().to_json())
        publisher.publish(receipt_topic("stranger"), receipt_message().to_json())
        publisher.publish(receipt_topic(tenant.device_id), b"{not json")
        beat = Telemetry(interval_s=30)
        publisher.publish(device_topic(tenant.device_id, "telemetry"), beat.to_json())

        def counted(kind: str, outcome: str) -> float:
            labels = {"kind": kind, "outcome": outcome}
            return reg.get_sample_value("rm_ingest_messages_total", labels) or 0

        wait_until(
            lambda: (
                sum(
                    counted(k, o)
                    for k in ("receipt", "telemetry")
                    for o in ("stored", "duplicate", "dead_letter")
                )
                == 6
            ),
            what="6 messages counted",
        )
        assert counted("receipt", "stored") == 2
        assert counted("receipt", "duplicate") == 1
        assert counted("receipt", "dead_letter") == 2
        assert counted("telemetry", "stored") == 1
        dead = "rm_ingest_dead_letters_total"
        assert reg.get_sample_value(dead, {"code": "unknown_device"}) == 1
        assert reg.get_sample_value(dead, {"code": "malformed_json"}) == 1
        assert reg.get_sample_value("rm_ingest_batch_size_sum") == 6
        assert reg.get_sample_value("rm_ingest_lag_seconds_count") == 2
        # one receipt waited 40 s on the scanner: it falls between the 30 and 60 s bounds
        assert reg.get_sample_value("rm_ingest_lag_seconds_bucket", {"le": "30.0"}) == 1
        assert reg.get_sample_value("rm_ingest_lag_seconds_bucket", {"le": "60.0"}) == 2
        assert reg.get_sample_value("rm_ingest_batch_failures_total") == 0

        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert value(text, "rm_ingest_broker_connected") == 1
        assert value(text, "rm_ingest_queue_depth") == 0
        assert value(text, "rm_db_pool_size") is not None
        assert value(text, "rm_ingest_messages_total", kind="receipt", outcome="stored") == 2
    finally:
        publisher.close()
        worker.stop()
        stop_http()
    assert worker.metrics.registry.get_sample_value("rm_ingest_broker_connected") == 0
