"""Fleet tests: the server's side of the protocol as a paho client, and an in-process agent."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish_one

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, parse_config
from models.protocol import Command, CommandResult, ConfigReported, device_topic
from tests.edge_agent.helpers import Subscriber

DEVICE = "fleet-1"


class Server:
    """The server's side of the protocol: publishes desired configs and commands, reads answers."""

    def __init__(self, mosquitto: Any) -> None:
        self.host, self.port = mosquitto.host, mosquitto.port
        self.sub = Subscriber(self.host, self.port, topic=f"rm/v1/dev/{DEVICE}/#")

    def publish(self, leaf: str, payload: bytes, retain: bool = False) -> None:
        publish_one.single(
            device_topic(DEVICE, leaf),
            payload,
            qos=1,
            retain=retain,
            hostname=self.host,
            port=self.port,
        )

    def desire(self, version: int, settings: dict[str, Any]) -> None:
        body = {"schema": "1.0", "version": version, "settings": settings}
        self.publish("config/desired", json.dumps(body).encode(), retain=True)

    def command(self, name: str, args: dict[str, Any] | None = None, **kw: Any) -> Command:
        cmd = Command(command_id=uuid.uuid4(), name=name, args=args or {}, **kw)
        self.publish(f"cmd/{cmd.command_id}", cmd.to_json())
        return cmd

    def reported(self) -> list[ConfigReported]:
        return [ConfigReported.model_validate_json(m.payload) for m in self.sub.on("/reported")]

    def results(self, cmd: Command) -> list[CommandResult]:
        return [
            CommandResult.model_validate_json(m.payload)
            for m in self.sub.on(f"/cmd/{cmd.command_id}/result")
        ]

    def final(self, cmd: Command, timeout: float = 20.0) -> CommandResult:
        def done() -> bool:
            return any(r.status != "in_progress" for r in self.results(cmd))

        assert self.sub.wait_for(done, timeout), f"no result for {cmd.name}: {self.results(cmd)}"
        return next(r for r in self.results(cmd) if r.status != "in_progress")

    def receipts(self) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.sub.on("/receipt")]

    def close(self) -> None:
        self.sub.close()


def agent_config(tmp_path: Path, port: int, **extra: Any) -> AgentConfig:
    data = {
        "device_id": DEVICE,
        "broker": {"port": port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "keepalive": 5},
        "source": {"type": "folder", "path": "inbox", "poll_interval_s": 0.05, "settle_s": 0},
        "outbox": {"path": "outbox.sqlite3"},
        "telemetry": {"interval_s": 1},
    } | extra
    return parse_config(data, base_dir=tmp_path)


class RunningAgent:
    """An `Agent` on a thread; `stop()` waits for `run()` to return."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.run, name="agent-under-test")
        self.thread.start()

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.agent.link.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.agent.link.connected, "the agent did not connect"

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
