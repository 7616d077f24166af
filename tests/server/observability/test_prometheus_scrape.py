"""The whole chain, every part real and in its own process: `receipts server`, `receipts
ingest`, PostgreSQL, Mosquitto and Debian's Prometheus scraping them; asserts through
Prometheus's HTTP API that the series the alerts and dashboards use were scraped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models.protocol import StatusMessage, Telemetry, device_topic
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.settings import ApiSettings
from tests.conftest import Mosquitto, free_tcp_port, wait_for_port
from tests.server.conftest import Db, make_tenant
from tests.server.helpers import receipt_message, receipt_topic
from tests.server.ingest.test_worker import Publisher

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

RECEIPTS = str(Path(sys.executable).with_name("receipts"))
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        p.terminate()
    for p in started:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def query(prom: str, expr: str) -> list[dict[str, object]]:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def scalar(prom: str, expr: str) -> float | None:
    result = query(prom, expr)
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def test_prometheus_scrapes_api_ingest_and_fleet_series(
    pg_url: str, mosquitto: Mosquitto, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    tenant = make_tenant(Db(pg_url, engine, session_factory(engine)), "Acme", "scan-1")
    engine.dispose()
    api, ingest, prom_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    env = {
        **os.environ,
        "RM_DATABASE_URL": pg_url,
        "RM_IMAGE_STORE__ROOT": str(tmp_path / "images"),
        "RM_MQTT__PORT": str(mosquitto.port),
        "RM_INGEST__CLIENT_ID": "ingest-prom",
        "RM_INGEST__BATCH_MAX_WAIT_MS": "20",
        "RM_OBSERVABILITY__INGEST_METRICS_HOST": "127.0.0.1",
        "RM_OBSERVABILITY__INGEST_METRICS_PORT": str(ingest),
        "RM_OBSERVABILITY__LOG_FILE": str(tmp_path / "server.log"),
    }
    logs = (tmp_path / "procs.log").open("ab")
    for argv in (
        [RECEIPTS, "server", "--port", str(api)],
        [RECEIPTS, "ingest"],
    ):
        procs.append(subprocess.Popen(argv, env=env, stdout=logs, stderr=subprocess.STDOUT))
    (tmp_path / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: receipts-api
    static_configs: [{{targets: ["127.0.0.1:{api}"]}}]
  - job_name: receipts-ingest
    static_configs: [{{targets: ["127.0.0.1:{ingest}"]}}]
"""
    )
    procs.append(
        subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
    )
    logs.close()  # the children hold their own descriptors
    wait_for_port("127.0.0.1", api, timeout=30)
    wait_for_port("127.0.0.1", ingest, timeout=30)
    wait_for_port("127.0.0.1", prom_port, timeout=30)

    auth = {"Authorization": f"Bearer {tenant.token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=5) as client:
        for _ in range(20):
            assert client.get("/api/v1/receipts", headers=auth).status_code == 200
        assert client.get("/api/v1/receipts").status_code == 401
    publisher = Publisher(mosquitto)
    try:
        status = StatusMessage(state="online", agent_version="2.0.0", model_versions={"ocr": "3"})
        publisher.publish(device_topic("scan-1", "status"), status.to_json())
        beat = Telemetry(interval_s=30, outbox_depth=3, last_read_ms=420.0, cpu_temp_c=55.0)
        publisher.publish(device_topic("scan-1", "telemetry"), beat.to_json())
        for _ in range(2):
            publisher.publish(receipt_topic("scan-1"), receipt_message().to_json())
        publisher.publish(receipt_topic("nobody"), receipt_message().to_json())
    finally:
        publisher.close()

    prom = f"http://127.0.0.1:{prom_port}"
    expected = {
        'up{job="receipts-api"}': 1,
        'up{job="receipts-ingest"}': 1,
        'rm_http_requests_total{job="receipts-api",route="/api/v1/receipts",status="200"}': 20,
        'rm_http_requests_total{job="receipts-api",route="/api/v1/receipts",status="401"}': 1,
        'rm_http_request_duration_seconds_count{route="/api/v1/receipts"}': 21,
        'rm_ingest_messages_total{job="receipts-ingest",kind="receipt",outcome="stored"}': 2,
        'rm_ingest_dead_letters_total{code="unknown_device"}': 1,
        "rm_ingest_lag_seconds_count": 2,
        "rm_ingest_broker_connected": 1,
        'rm_fleet_devices{state="online"}': 1,
        'rm_device_outbox_depth{device_id="scan-1"}': 3,
        'rm_device_cpu_temperature_celsius{device_id="scan-1"}': 55,
        'rm_device_inference_seconds{device_id="scan-1"}': 0.42,
        'rm_device_info{device_id="scan-1",agent_version="2.0.0",model_version="ocr=3"}': 1,
        'rm_db_pool_size{job="receipts-api"}': ApiSettings().db_pool_size,
        'rm_db_pool_size{job="receipts-ingest"}': 5,
    }
    deadline = time.monotonic() + 30
    got: dict[str, float | None] = {}
    while time.monotonic() < deadline:
        got = {expr: scalar(prom, f"sum({expr})" if "count" in expr else expr) for expr in expected}
        if all(got[e] is not None and abs(got[e] - v) < 1e-6 for e, v in expected.items()):  # type: ignore[operator]
            break
        time.sleep(0.5)
    assert got == pytest.approx(expected), {
        e: (got[e], v) for e, v in expected.items() if got[e] != v
    }
    # buckets the latency alerts compare to are there
    les = {r["metric"]["le"] for r in query(prom, "rm_http_request_duration_seconds_bucket")}  # type: ignore[index]
    assert {"0.5", "1.0"} <= les
    # and the JSON log file has the processes' lines
    assert '"logger": "server.cli"' in (tmp_path / "server.log").read_text()
