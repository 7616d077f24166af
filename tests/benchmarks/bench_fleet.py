"""Fleet simulation: how many scanners one machine's broker and ingest worker hold.

N simulated scanners, each an asyncio MQTT client (`aiomqtt`) on loopback with its own client id
and a device registered in a fresh PostgreSQL database, send a heartbeat (`Telemetry` with
`sent_at`, QoS 0) every `--heartbeat-s` and one small valid receipt (QoS 1) every `--receipt-s`,
spread evenly in time, to a private Mosquitto with a generated config; the real ingest worker
runs in its own process (`receipts ingest`, configured by RM_* variables). The simulator runs in
another process; this one polls the `devices` table and measures heartbeat-to-database lag: the
time from a heartbeat's `sent_at` until a query first sees it as the device's snapshot (an upper
bound, at most one poll interval late). A heartbeat never seen (dropped at QoS 0, or overtaken
by the next one) counts as an infinite lag in the percentiles. Receipts stored are counted
against receipts the broker acknowledged.

Steps of N are run one after another, each with its own broker, database and worker; the answer
is the largest N whose p95 lag stays under 5 s. `--heartbeat-s`/`--receipt-s` below 30/60
compress time: the table shows the message rate offered and how many real-rate scanners (30 s
heartbeats, a receipt a minute) would send as much; connections and sessions are not
compressed, so a compressed run is a message-rate test, not a connection-count one.

Run as a script (``python -m tests.benchmarks.bench_fleet --devices 500,1000,2000,3000``) or as
the `benchmark`-marked test (``pytest -m benchmark tests/benchmarks/bench_fleet.py``: 20 scanners
for a few seconds). Floor (issue 5): 2,000 scanners at the real rate with p95 lag under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import math
import multiprocessing as mp
import os
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LAG_LIMIT_S = 5.0
FLOOR_DEVICES = 2000
REAL_HEARTBEAT_S = 30.0
REAL_RECEIPT_S = 60.0
POLL_S = 0.25


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def device_ids(n: int) -> list[str]:
    return [f"sim-{i:05d}" for i in range(n)]


# --------------------------------------------------------------------------- simulator (child)


@dataclass
class SimTotals:
    connected: int = 0
    connect_failures: int = 0
    connect_s: float = 0.0
    heartbeats: int = 0
    receipts_attempted: int = 0
    receipts_sent: int = 0  # acknowledged by the broker (PUBACK)
    acks: int = 0  # DeliveryAck messages from the server
    publish_errors: int = 0
    late_s: list[float] = field(default_factory=list)  # send time minus scheduled time


async def _simulate(
    port: int, n: int, heartbeat_s: float, receipt_s: float, seconds: float, out: Any
) -> SimTotals:
    import aiomqtt

    from models.protocol import Telemetry, device_topic
    from tests.server.helpers import receipt_message

    template = receipt_message(receipt_id=uuid.UUID(int=0)).to_json()
    zero = str(uuid.UUID(int=0)).encode()
    ids = device_ids(n)
    totals = SimTotals()
    loop = asyncio.get_running_loop()

    def quiet_closed_sockets(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # paho asks for a write callback on a socket aiomqtt has just closed (disconnects at
        # the end): harmless, and thousands of tracebacks would hide the table.
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno == errno.EBADF:
            return
        lp.default_exception_handler(context)

    loop.set_exception_handler(quiet_closed_sockets)
    go = asyncio.Event()
    ready = 0
    all_ready = asyncio.Event()
    gate = asyncio.Semaphore(64)  # connects in flight at once
    t0_box: list[float] = []

    def one_ready() -> None:
        nonlocal ready
        ready += 1
        if ready == n:
            all_ready.set()

    async def read_acks(client: aiomqtt.Client) -> None:
        async for _msg in client.messages:
            totals.acks += 1

    async def device(i: int, device_id: str) -> None:
        client = aiomqtt.Client(
            "127.0.0.1", port, identifier=device_id, keepalive=60, timeout=30, clean_session=True
        )
        try:
            async with gate:
                await client.__aenter__()
                await client.subscribe(device_topic(device_id, "ack"), qos=1)
        except (aiomqtt.MqttError, OSError):
            totals.connect_failures += 1
            one_ready()
            return
        totals.connected += 1
        one_ready()
        reader = asyncio.create_task(read_acks(client))
        try:
            await go.wait()
            t0 = t0_box[0]
            end = t0 + seconds
            hb_next = t0 + heartbeat_s * i / n
            rc_next = t0 + receipt_s * (i + 0.5) / n
            started = time.monotonic()
            while True:
                due = min(hb_next, rc_next)
                if due >= end:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                totals.late_s.append(loop.time() - due)
                try:
                    if hb_next <= rc_next:
                        hb_next += heartbeat_s
                        beat = Telemetry(
                            interval_s=heartbeat_s,
                            uptime_s=time.monotonic() - started,
                            scans_total=totals.receipts_attempted,
                        )
                        await client.publish(device_topic(device_id, "telemetry"), beat.to_json())
                        totals.heartbeats += 1
                    else:
                        rc_next += receipt_s
                        totals.receipts_attempted += 1
                        body = template.replace(zero, str(uuid.uuid4()).encode())
                        await client.publish(
                            device_topic(device_id, "receipt"), body, qos=1, timeout=30
                        )
                        totals.receipts_sent += 1
                except aiomqtt.MqttError:
                    totals.publish_errors += 1
            await asyncio.sleep(2.0)  # let the last acks arrive
        finally:
            reader.cancel()
            with _suppress():
                await reader
            with _suppress():
                await client.__aexit__(None, None, None)

    started = time.monotonic()
    tasks = [asyncio.create_task(device(i, d)) for i, d in enumerate(ids)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), timeout=120 + n / 20)
    totals.connect_s = time.monotonic() - started
    t0_box.append(loop.time() + 1.0)
    out.put(("running", totals.connected, totals.connect_failures, time.time() + 1.0))
    go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 120)
    return totals


def _suppress() -> contextlib.suppress:
    """Ignore the errors of a closing MQTT client or a cancelled task."""
    return contextlib.suppress(Exception, asyncio.CancelledError)


def simulate(
    port: int, n: int, heartbeat_s: float, receipt_s: float, seconds: float, out: Any
) -> None:
    """Child process: run the fleet; puts ("running", ...) when connected, then ("done", totals)."""
    raise_fd_limit()
    totals = asyncio.run(_simulate(port, n, heartbeat_s, receipt_s, seconds, out))
    late = sorted(totals.late_s)
    totals.late_s = [_pct(late, 0.95), late[-1] if late else 0.0]
    out.put(("done", totals))


# --------------------------------------------------------------------------- one step


@dataclass
class Step:
    devices: int
    heartbeat_s: float
    receipt_s: float
    seconds: float
    connected: int = 0
    connect_s: float = 0.0
    heartbeats: int = 0
    seen: int = 0
    lags: list[float] = field(default_factory=list)
    receipts_sent: int = 0
    receipts_stored: int = 0
    acks: int = 0
    publish_errors: int = 0
    late_p95: float = 0.0
    worker_alive: bool = True

    @property
    def missed(self) -> int:
        return max(0, self.heartbeats - self.seen)

    def pct(self, q: float) -> float:
        """Percentile of the lag, heartbeats never seen counting as infinite."""
        return _pct(sorted(self.lags) + [math.inf] * self.missed, q)

    @property
    def max_lag(self) -> float:
        return self.pct(1.0)

    @property
    def msgs_per_s(self) -> float:
        return self.devices * (1 / self.heartbeat_s + 1 / self.receipt_s)

    @property
    def real_rate_equivalent(self) -> float:
        """Real-rate scanners (30 s heartbeat, a receipt a minute) offering the same messages/s."""
        return self.msgs_per_s / (1 / REAL_HEARTBEAT_S + 1 / REAL_RECEIPT_S)

    @property
    def ok(self) -> bool:
        return (
            self.pct(0.95) < LAG_LIMIT_S
            and self.connected == self.devices
            and self.receipts_stored == self.receipts_sent
        )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def write_broker_config(workdir: Path, port: int) -> Path:
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_connections -1",
        "max_inflight_messages 1000",
        "max_queued_messages 0",
        "persistence false",
        "set_tcp_nodelay true",
        f"log_dest file {workdir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_ready(sessions: Any, port: int, probe_device: str, timeout: float = 60.0) -> None:
    """Publish heartbeats until the worker writes one: it is connected and subscribed."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from sqlalchemy import select

    from models.protocol import Telemetry, device_topic
    from server.db.models import Device

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-fleet-probe")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            client.publish(
                device_topic(probe_device, "telemetry"), Telemetry(interval_s=30).to_json()
            )
            time.sleep(0.5)
            with sessions() as s:
                at = s.scalar(select(Device.telemetry_at).where(Device.device_id == probe_device))
            if at is not None:
                return
        raise TimeoutError(f"the ingest worker wrote no heartbeat in {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()


def run_step(
    n: int, heartbeat_s: float, receipt_s: float, seconds: float, *, verbose: bool = True
) -> Step:
    from sqlalchemy import func, select, text

    from server.db.engine import create_db_engine, session_factory
    from server.db.migrate import migrate
    from server.db.models import Device, Organization, Receipt
    from tests.conftest import create_pg_database, drop_pg_database, free_tcp_port, wait_for_port

    step = Step(n, heartbeat_s, receipt_s, seconds)
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_tcp_port()
        conf = write_broker_config(work, port)
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        broker = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        worker: subprocess.Popen[bytes] | None = None
        url = create_pg_database()
        engine = create_db_engine(url)
        try:
            wait_for_port("127.0.0.1", port)
            migrate(url)
            sessions = session_factory(engine)
            with sessions.begin() as s:
                org = Organization(name="fleet-bench", plan="enterprise")  # no quota
                s.add(org)
                s.flush()
                s.add_all(Device(organization_id=org.id, device_id=d) for d in device_ids(n))
            env = {
                **os.environ,
                "RM_DATABASE_URL": url,
                "RM_MQTT__PORT": str(port),
                "RM_INGEST__CLIENT_ID": f"bench-fleet-{uuid.uuid4().hex[:6]}",
                "RM_OBSERVABILITY__INGEST_METRICS_PORT": "0",
                "RM_OBSERVABILITY__LOG_FORMAT": "text",
                "RM_IMAGE_STORE__ROOT": str(work / "images"),
            }
            receipts_cli = Path(sys.executable).parent / "receipts"
            with (work / "ingest.log").open("wb") as log:
                worker = subprocess.Popen(
                    [str(receipts_cli), "--log-level", "warning", "ingest"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            _wait_ready(sessions, port, device_ids(n)[0])

            ctx = mp.get_context("spawn")
            out: mp.Queue[Any] = ctx.Queue()
            sim = ctx.Process(target=simulate, args=(port, n, heartbeat_s, receipt_s, seconds, out))
            sim.start()
            kind, connected, _failures, start_wall = out.get(timeout=180 + n / 20)
            assert kind == "running"
            step.connected = connected
            start_at = dt.datetime.fromtimestamp(start_wall, dt.UTC)

            # Poll the snapshot: a heartbeat's lag is when a query first sees its sent_at.
            seen: dict[str, str] = {}
            query = text(
                "SELECT device_id, telemetry->>'sent_at' FROM devices "
                "WHERE telemetry_at IS NOT NULL"
            )
            done: SimTotals | None = None
            tail_until = math.inf
            hard_stop = time.monotonic() + seconds + 240
            with engine.connect() as conn:
                while time.monotonic() < min(tail_until, hard_stop):
                    now = dt.datetime.now(dt.UTC)
                    for device_id, sent in conn.execute(query):
                        if sent is None or seen.get(device_id) == sent:
                            continue
                        seen[device_id] = sent
                        sent_at = dt.datetime.fromisoformat(sent)
                        if sent_at >= start_at:
                            step.lags.append((now - sent_at).total_seconds())
                    conn.rollback()
                    if done is None:
                        try:
                            msg = out.get_nowait()
                        except queue.Empty:
                            pass
                        else:
                            done = msg[1]
                            tail_until = time.monotonic() + LAG_LIMIT_S * 2
                    time.sleep(POLL_S)
            if done is None:
                done = out.get(timeout=120)[1]
            sim.join(30)
            assert done is not None
            step.seen = len(step.lags)
            step.connect_s = done.connect_s
            step.heartbeats = done.heartbeats
            step.receipts_sent = done.receipts_sent
            step.acks = done.acks
            step.publish_errors = done.publish_errors
            step.late_p95 = done.late_s[0] if done.late_s else 0.0

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with sessions() as s:
                    stored = int(s.scalar(select(func.count()).select_from(Receipt)) or 0)
                step.receipts_stored = stored
                if stored >= step.receipts_sent:
                    break
                time.sleep(0.5)
            step.worker_alive = worker.poll() is None
        finally:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
            broker.terminate()
            broker.wait(10)
            engine.dispose()
            drop_pg_database(url)
    if verbose:
        print(_row(step), flush=True)
    return step


# --------------------------------------------------------------------------- report

_HEADER = (
    f"{'scanners':>8} {'hb_s':>5} {'rc_s':>5} {'msg/s':>6} {'real-eq':>7} {'conn':>5} "
    f"{'conn_s':>6} {'hb sent':>8} {'seen':>7} {'p50 s':>6} {'p95 s':>6} {'max s':>6} "
    f"{'rcpt sent':>9} {'stored':>7} {'late95':>6} {'ok':>3}"
)


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else "nan" if math.isnan(v) else f"{v:.2f}"


def _row(s: Step) -> str:
    return (
        f"{s.devices:>8} {s.heartbeat_s:>5g} {s.receipt_s:>5g} {s.msgs_per_s:>6.0f} "
        f"{s.real_rate_equivalent:>7.0f} {s.connected:>5} {s.connect_s:>6.1f} {s.heartbeats:>8} "
        f"{s.seen:>7} {_fmt(s.pct(0.5)):>6} {_fmt(s.pct(0.95)):>6} {_fmt(s.max_lag):>6} "
        f"{s.receipts_sent:>9} {s.receipts_stored:>7} {s.late_p95:>6.2f} "
        f"{'yes' if s.ok else 'NO':>3}"
    )


def sweep(
    steps: list[int], heartbeat_s: float, receipt_s: float, seconds: float, stop_after_fail: bool
) -> list[Step]:
    compressed = heartbeat_s != REAL_HEARTBEAT_S or receipt_s != REAL_RECEIPT_S
    print(
        f"fleet: heartbeat every {heartbeat_s:g} s, a receipt every {receipt_s:g} s, "
        f"{seconds:g} s per step{' (COMPRESSED time)' if compressed else ' (real rate)'}; "
        f"lag = first poll (every {POLL_S} s) that sees a heartbeat minus its sent_at"
    )
    print(_HEADER, flush=True)
    results = []
    for n in steps:
        step = run_step(n, heartbeat_s, receipt_s, seconds)
        results.append(step)
        if not step.ok and stop_after_fail:
            break
    print(_HEADER)
    for s in results:
        print(_row(s))
    passed = [s for s in results if s.ok]
    if passed:
        best = max(passed, key=lambda s: s.devices)
        print(
            f"largest N with p95 lag < {LAG_LIMIT_S:g} s: {best.devices} scanners "
            f"({best.msgs_per_s:.0f} msg/s, as much as {best.real_rate_equivalent:.0f} real-rate "
            f"scanners send); floor {FLOOR_DEVICES} real-rate scanners"
        )
    else:
        print(f"no step held p95 lag < {LAG_LIMIT_S:g} s")
    return results


@pytest.mark.benchmark
@pytest.mark.postgres
@pytest.mark.mosquitto
def test_fleet_small() -> None:
    step = run_step(20, heartbeat_s=1.0, receipt_s=2.0, seconds=6.0)
    assert step.connected == 20
    assert step.receipts_sent > 0
    assert step.receipts_stored == step.receipts_sent
    assert step.seen > 0
    assert statistics.median(step.lags) < LAG_LIMIT_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--devices", default="500,1000,2000,3000", help="Comma-separated steps of N scanners."
    )
    parser.add_argument("--heartbeat-s", type=float, default=REAL_HEARTBEAT_S)
    parser.add_argument("--receipt-s", type=float, default=REAL_RECEIPT_S)
    parser.add_argument("--seconds", type=float, default=90.0, help="Length of each step.")
    parser.add_argument(
        "--keep-going", action="store_true", help="Run every step even after one fails."
    )
    args = parser.parse_args()
    steps = [int(x) for x in args.devices.split(",") if x.strip()]
    sweep(steps, args.heartbeat_s, args.receipt_s, args.seconds, not args.keep_going)


if __name__ == "__main__":
    main()
