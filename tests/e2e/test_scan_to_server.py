"""Scan to server with every part in its own process: mosquitto, `receipts server`, `receipts
ingest`, `receipts agent`. Receipts dropped into the agent's folder appear in the REST API with
their fields and image; then the broker is stopped while the agent scans, the agent and the ingest
worker are killed with SIGKILL mid-stream, everything is restarted, and every receipt has arrived
exactly once. Bad input along the way (a truncated JPEG, a text file, a message from an unknown
device) is refused with a reason while everything keeps running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Mosquitto, free_tcp_port, wait_for_port

DATASET = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sroie-train"
RECEIPTS = [DATASET / "img" / f"{i:03d}.jpg" for i in (0, 1, 2, 3, 4, 5)]
DEVICE = "e2e-scanner"


def receipts_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from models.cli import main; main()", *args]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Processes:
    """Starts and kills the system's processes, keeping each one's output in a log file."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:  # the child keeps its own fd
            self.procs[name] = subprocess.Popen(
                receipts_cmd(*args), env=self.env, cwd=self.workdir, stdout=log, stderr=log
            )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)

    def assert_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} died:\n{self.log(name)}"

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def system(tmp_path: Path, mosquitto: Mosquitto, pg_url: str) -> Iterator[dict[str, Any]]:
    if not all(p.exists() for p in RECEIPTS):
        pytest.skip(f"needs the SROIE receipts in {DATASET}")
    env = dict(os.environ)
    env.update(
        {
            "RM_DATABASE_URL": pg_url,
            "RM_MQTT__HOST": mosquitto.host,
            "RM_MQTT__PORT": str(mosquitto.port),
            "RM_INGEST__CLIENT_ID": "e2e-ingest",
            "RM_INGEST__BATCH_MAX_WAIT_MS": "50",
            "RM_IMAGE_STORE__ROOT": str(tmp_path / "images"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
    )
    for args in (
        ("admin", "create-org", "E2E Shop"),
        ("admin", "add-device", "E2E Shop", DEVICE),
    ):
        subprocess.run(receipts_cmd(*args), env=env, check=True, capture_output=True)
    token = subprocess.run(
        receipts_cmd("admin", "create-token", "E2E Shop"),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    agent_dir = tmp_path / "agent"
    (agent_dir / "inbox").mkdir(parents=True)
    (agent_dir / "agent.yaml").write_text(
        json.dumps(  # JSON is YAML
            {
                "device_id": DEVICE,
                "broker": {
                    "host": mosquitto.host,
                    "port": mosquitto.port,
                    "reconnect_min_s": 0.2,
                    "reconnect_max_s": 1,
                },
                "source": {"type": "folder", "path": "inbox", "settle_s": 0.3},
                "outbox": {"path": "outbox.sqlite3"},
                "telemetry": {"interval_s": 5},
            }
        )
    )
    procs = Processes(tmp_path, env)
    api_port = free_tcp_port()
    procs.start("server", "server", "--port", str(api_port))
    procs.start("ingest", "ingest")
    procs.start("agent", "agent", "--config", str(agent_dir / "agent.yaml"))
    wait_for_port("127.0.0.1", api_port, timeout=60)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    try:
        yield {
            "procs": procs,
            "client": client,
            "inbox": agent_dir / "inbox",
            "agent_dir": agent_dir,
            "broker": mosquitto,
            "pg_url": pg_url,
        }
    finally:
        client.close()
        procs.stop_all()


def all_receipts(client: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/receipts", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def outbox_depth(agent_dir: Path) -> int:
    """Receipts waiting in the scanner's outbox (read from its SQLite file, read-only)."""
    path = agent_dir / "outbox.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT COUNT(DISTINCT receipt_id) FROM messages").fetchone()
    except sqlite3.OperationalError:  # the agent has not created its tables yet
        return 0
    finally:
        db.close()
    return int(row[0])


def drop(inbox: Path, sources: list[Path]) -> None:
    for src in sources:
        tmp = inbox / f".{src.name}.part"
        shutil.copyfile(src, tmp)
        tmp.rename(inbox / src.name)


@pytest.mark.e2e
def test_receipts_arrive_exactly_once_through_outages_and_crashes(system: dict[str, Any]) -> None:
    procs: Processes = system["procs"]
    client: httpx.Client = system["client"]
    inbox: Path = system["inbox"]
    broker: Mosquitto = system["broker"]

    # 1. Normal operation, with two broken files among the receipts.
    (inbox / "truncated.jpg").write_bytes(RECEIPTS[0].read_bytes()[:2000])
    (inbox / "notes.jpg").write_text("this is not an image")
    drop(inbox, RECEIPTS[:2])
    wait_until("two receipts in the API", lambda: len(all_receipts(client)) == 2)
    failed = sorted(p.name for p in (inbox / "failed").iterdir() if not p.name.endswith(".txt"))
    assert failed == ["notes.jpg", "truncated.jpg"]
    procs.assert_alive()

    first = all_receipts(client)[0]
    detail = client.get(f"/api/v1/receipts/{first['id']}")
    assert detail.status_code == 200
    message = detail.json()["message"]
    assert message["receipt"]["lines"], "the receipt carries its OCR lines"
    assert message["receipt"]["timings_ms"], "and the pipeline's timings"
    wait_until(
        "the image of the receipt",
        lambda: client.get(f"/api/v1/receipts/{first['id']}/image").status_code == 200,
    )
    image = client.get(f"/api/v1/receipts/{first['id']}/image")
    assert image.headers["content-type"] in {"image/jpeg", "image/webp", "image/png"}
    assert image.content[:2] == b"\xff\xd8" or image.headers["content-type"] != "image/jpeg"

    # 2. The broker goes away while the scanner keeps scanning; then the scanner is killed.
    broker.stop()
    drop(inbox, RECEIPTS[2:5])
    wait_until("three scans waiting in the outbox", lambda: outbox_depth(system["agent_dir"]) >= 3)
    procs.kill("agent")

    # 3. Broker and scanner come back; the ingest worker is killed while receipts flow.
    broker.start()
    procs.start("agent", "agent", "--config", str(system["agent_dir"] / "agent.yaml"))
    drop(inbox, RECEIPTS[5:])
    wait_until("the first replayed receipt", lambda: len(all_receipts(client)) >= 3)
    procs.kill("ingest")
    procs.start("ingest", "ingest")

    # 4. Everything arrives, once.
    wait_until("all six receipts", lambda: len(all_receipts(client)) >= 6, timeout=180)
    time.sleep(2)  # anything left in flight would show up as a seventh row now
    receipts = all_receipts(client)
    assert len(receipts) == 6
    assert len({r["id"] for r in receipts}) == 6
    # Read fields reach the API (Tesseract + extraction on real receipts: most have them).
    assert sum(1 for r in receipts if r["total"] is not None) >= 3
    assert sum(1 for r in receipts if r["merchant"]) >= 3
    wait_until(
        "every receipt's image",
        lambda: all(
            client.get(f"/api/v1/receipts/{r['id']}/image").status_code == 200 for r in receipts
        ),
    )
    wait_until("an empty outbox", lambda: outbox_depth(system["agent_dir"]) == 0)
    done = sorted(p.name for p in (inbox / "done").iterdir())
    assert done == sorted(p.name for p in RECEIPTS)
    procs.assert_alive()

    # 5. A message from a device nobody registered is refused and recorded; nothing else breaks.
    stranger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stranger")
    stranger.connect(broker.host, broker.port)
    stranger.loop_start()
    stranger.publish(
        "rm/v1/dev/stranger/receipt", json.dumps({"schema": "1.0"}), qos=1
    ).wait_for_publish(5)
    stranger.disconnect()
    stranger.loop_stop()

    def refused() -> bool:
        out = subprocess.run(
            receipts_cmd("admin", "dead-letters", "--code", "unknown_device"),
            env=procs.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return "stranger" in out

    wait_until("the stranger's message in dead letters", refused, timeout=30)
    assert len(all_receipts(client)) == 6
    assert procs.stop("agent") == 0
    procs.assert_alive()
    uuid.UUID(receipts[0]["id"])
