"""Ingest throughput: receipts/s from MQTT (QoS 1) into PostgreSQL, batched vs one commit each.

A separate publisher process floods a private Mosquitto with receipt messages at QoS 1 while an
ingest worker writes them to a fresh PostgreSQL database; then every published receipt must be
in the database exactly once. Run as a script (``python -m tests.benchmarks.bench_ingest
--seconds 60``) or as the `benchmark`-marked test (``pytest -m benchmark tests/benchmarks``;
RM_BENCH_SECONDS sets its length). Floor: 1,000 receipts/s sustained for 60 s with batching.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

FLOOR_PER_S = 1000.0


def publish(port: int, seconds: float, limit: int, device_id: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child process: publish receipts at QoS 1 for `seconds`, at most `limit`; report the count."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from models.protocol import device_topic
    from tests.server.helpers import receipt_message

    template = receipt_message(receipt_id=uuid.UUID(int=0)).to_json()
    zero = str(uuid.UUID(int=0)).encode()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = device_topic(device_id, "receipt")
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and sent < limit:
        info = None
        for _ in range(200):
            info = client.publish(topic, template.replace(zero, str(uuid.uuid4()).encode()), qos=1)
            sent += 1
        assert info is not None
        info.wait_for_publish(30)  # keeps paho's own queue bounded
    client.disconnect()
    client.loop_stop()
    out.put(sent)


@dataclass
class Run:
    mode: str
    published: int
    stored: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def run_mode(
    mode: str, batch_size: int, seconds: float, limit: int = 10**9, drain_timeout: float = 300.0
) -> Run:
    from server.db.engine import create_db_engine, session_factory
    from server.db.migrate import migrate
    from server.db.models import Receipt
    from server.images.local import LocalImageStore, LocalImageStoreConfig
    from server.ingest.worker import IngestWorker
    from server.organizations import service as orgs
    from server.settings import IngestSettings, MqttSettings
    from tests.conftest import Mosquitto, create_pg_database, drop_pg_database, free_tcp_port

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "mosquitto"
        workdir.mkdir()
        broker = Mosquitto(workdir, free_tcp_port())
        broker.start()
        url = create_pg_database()
        engine = create_db_engine(url)
        try:
            migrate(url)
            sessions = session_factory(engine)
            with sessions.begin() as s:
                orgs.create_organization(s, "bench").plan = "enterprise"  # no quota
                orgs.add_device(s, "bench", "bench-1")
            worker = IngestWorker(
                MqttSettings(port=broker.port),
                IngestSettings(
                    client_id=f"bench-{mode}", batch_size=batch_size, batch_max_wait_ms=50
                ),
                sessions,
                LocalImageStore(LocalImageStoreConfig(root=Path(tmp) / "img")),
            )
            worker.start()
            assert worker.wait_subscribed(10)
            ctx = mp.get_context("spawn")
            out: mp.Queue[int] = ctx.Queue()
            proc = ctx.Process(target=publish, args=(broker.port, seconds, limit, "bench-1", out))
            started = time.monotonic()
            proc.start()
            published = out.get(timeout=seconds + 120)
            proc.join(30)
            deadline = time.monotonic() + drain_timeout
            last, last_change = -1, time.monotonic()
            while time.monotonic() < deadline and worker.stats.receipts < published:
                if worker.stats.receipts != last:
                    last, last_change = worker.stats.receipts, time.monotonic()
                time.sleep(0.05)
            elapsed = (
                time.monotonic() if worker.stats.receipts < published else last_change
            ) - started
            worker.stop()
            with sessions() as s:
                stored = int(s.scalar(select(func.count()).select_from(Receipt)) or 0)
            return Run(mode, published, stored, elapsed)
        finally:
            engine.dispose()
            drop_pg_database(url)
            broker.stop()


def compare(seconds: float, per_message_count: int) -> tuple[Run, Run]:
    batched = run_mode("batched", 500, seconds)
    single = run_mode("per-message", 1, seconds, limit=per_message_count)
    print(f"\n{'mode':<14}{'published':>11}{'stored':>9}{'seconds':>9}{'receipts/s':>12}")
    for r in (batched, single):
        print(f"{r.mode:<14}{r.published:>11}{r.stored:>9}{r.seconds:>9.1f}{r.per_s:>12.0f}")
    verdict = "meets" if batched.per_s >= FLOOR_PER_S and seconds >= 60 else "does NOT meet"
    print(f"batching {verdict} the floor of {FLOOR_PER_S:.0f} receipts/s sustained for 60 s")
    return batched, single


@pytest.mark.benchmark
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_ingest_throughput() -> None:
    import os

    seconds = float(os.environ.get("RM_BENCH_SECONDS", "20"))
    batched, single = compare(seconds, 2000)
    for r in (batched, single):
        assert r.stored == r.published, f"{r.mode}: {r.published} published, {r.stored} stored"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Publishing time, batched.")
    parser.add_argument(
        "--per-message-count", type=int, default=3000, help="Receipts sent, one commit each."
    )
    args = parser.parse_args()
    compare(args.seconds, args.per_message_count)


if __name__ == "__main__":
    main()
