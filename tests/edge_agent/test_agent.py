"""The agent in its own process against a real Mosquitto: kill -9, restarts, last will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge_agent.outbox import Outbox, OutboxConfig
from models.protocol import ReceiptMessage, StatusMessage
from tests.edge_agent.helpers import Subscriber

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "scanner-t1"


def write_config(tmp_path: Path, port: int) -> Path:
    config = {
        "device_id": DEVICE,
        "broker": {"port": port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "keepalive": 5},
        "source": {"type": "folder", "path": "inbox", "poll_interval_s": 0.05, "settle_s": 0},
        "outbox": {"path": "outbox.sqlite3"},
        "telemetry": {"interval_s": 1},
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def drop_images(inbox: Path, n: int, start: int = 0) -> None:
    inbox.mkdir(exist_ok=True)
    for i in range(start, start + n):
        image = np.full((200, 120, 3), 40 + i, np.uint8)
        ok, data = cv2.imencode(".jpg", image)
        assert ok
        tmp = inbox / f".r{i}.jpg"
        tmp.write_bytes(data.tobytes())
        tmp.rename(inbox / f"r{i}.jpg")


class AgentProcess:
    def __init__(self, config: Path) -> None:
        self.log = config.parent / "agent.log"
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "tests/edge_agent/run_agent.py"), str(config)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(15)


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for a in started:
        if a.proc.poll() is None:
            a.kill9()


def wait(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_scans_survive_kill_9_and_are_delivered_after_restart(
    mosquitto, tmp_path: Path, agents
) -> None:
    config = write_config(tmp_path, mosquitto.port)
    inbox, done = tmp_path / "inbox", tmp_path / "inbox" / "done"
    mosquitto.stop()  # the broker is down: scans pile up in the outbox
    agents.append(AgentProcess(config))
    drop_images(inbox, 6)
    assert wait(lambda: len(list(done.glob("*.jpg"))) == 6), (tmp_path / "agent.log").read_text()
    agents[0].kill9()

    stored = Outbox(OutboxConfig(path=tmp_path / "outbox.sqlite3"))
    assert stored.stats().receipts == 6, "every scan is in the outbox after kill -9"
    stored.close()

    mosquitto.start()
    sub = Subscriber(mosquitto.host, mosquitto.port)
    try:
        agents.append(AgentProcess(config))
        drop_images(inbox, 2, start=6)
        assert sub.wait_for(lambda: len(sub.receipt_ids()) == 8, timeout=30), (
            tmp_path / "agent.log"
        ).read_text()
        assert len(sub.on("/receipt")) == 8, "each receipt once"
        sources = sorted(
            ReceiptMessage.model_validate_json(m.payload).source or "" for m in sub.on("/receipt")
        )
        assert sources == [f"r{i}.jpg" for i in range(8)]
        msg = ReceiptMessage.model_validate_json(sub.on("/receipt")[0].payload)
        assert msg.image is not None
        image = next(m for m in sub.on("") if m.topic.endswith(f"/image/{msg.receipt_id}"))
        assert len(image.payload) == msg.image.size_bytes

        def drained() -> bool:  # the broker's acks reach the agent a moment after the messages
            outbox = Outbox(OutboxConfig(path=tmp_path / "outbox.sqlite3"))
            try:
                return outbox.stats().depth == 0
            finally:
                outbox.close()

        assert wait(drained), "every delivered receipt leaves the outbox"
        assert agents[1].terminate() == 0, "SIGTERM stops the agent cleanly"
    finally:
        sub.close()
    assert Outbox(OutboxConfig(path=tmp_path / "outbox.sqlite3")).stats().depth == 0


def test_last_will_says_offline_when_the_agent_is_killed(mosquitto, tmp_path: Path, agents) -> None:
    config = write_config(tmp_path, mosquitto.port)
    sub = Subscriber(mosquitto.host, mosquitto.port)
    try:
        agents.append(AgentProcess(config))

        def states() -> list[str]:
            return [StatusMessage.model_validate_json(m.payload).state for m in sub.on("/status")]

        assert sub.wait_for(lambda: states() == ["online"]), (tmp_path / "agent.log").read_text()
        assert sub.wait_for(lambda: len(sub.on("/telemetry")) >= 1)
        agents[0].kill9()
        assert sub.wait_for(lambda: states() == ["online", "offline"], timeout=15)
    finally:
        sub.close()


def test_broken_file_in_folder_fails_with_reason_and_agent_keeps_running(
    mosquitto, tmp_path: Path, agents
) -> None:
    config = write_config(tmp_path, mosquitto.port)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    sub = Subscriber(mosquitto.host, mosquitto.port)
    try:
        agents.append(AgentProcess(config))
        drop_images(inbox, 1)
        assert sub.wait_for(lambda: len(sub.receipt_ids()) == 1, timeout=30)
        reason = inbox / "failed" / "garbage.jpg.reason.txt"
        assert reason.is_file() and reason.read_text().strip()
        assert (inbox / "failed" / "garbage.jpg").is_file()
        assert "garbage.jpg" in (tmp_path / "agent.log").read_text()
        assert agents[0].proc.poll() is None
    finally:
        sub.close()
