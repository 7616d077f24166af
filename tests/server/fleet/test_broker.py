"""The fleet on a real Mosquitto whose password file, ACL and CRL come from the registry.

The API (claims, revocation, config, commands) runs with the real paho publisher, the ingest
worker runs against the broker, and a paho client plays the scanner.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.protocol import (
    Command,
    CommandResult,
    ConfigDesired,
    ConfigReported,
    StatusMessage,
    Telemetry,
    device_topic,
)
from provisioning.ca import CertificateAuthority
from provisioning.mosquitto import BrokerAuth, SignalReloader
from server.api.app import create_app
from server.fleet import enrolment
from server.fleet.broker_sync import BrokerSync
from server.fleet.publisher import PahoPublisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore
from server.ingest.worker import IngestWorker
from server.settings import IngestSettings, MqttSettings, Settings
from tests.conftest import Mosquitto
from tests.provisioning.mqtt_client import Client
from tests.server.conftest import Db, Tenant, make_tenant
from tests.server.fleet.conftest import auth, device_csr, new_claim_code

pytestmark = pytest.mark.mosquitto

#: See tests/provisioning/test_broker.py: with 0, Mosquitto 2.0.11 drops a client right after
#: acknowledging one of its denied QoS 1 publishes, hiding the reason code.
QUEUE_LIMIT = ["max_queued_messages 1000"]


@dataclass
class Stack:
    broker: Mosquitto
    client: TestClient
    acme: Tenant
    db: Db
    devices: list[Client]

    def claim(self, device_id: str) -> str:
        code = new_claim_code(self.db, self.acme.name)
        r = self.client.post(
            "/api/v1/fleet/claim",
            json={"claim_code": code, "device_id": device_id, "csr_pem": device_csr()[1]},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["password"])

    def connect(self, device_id: str, password: str) -> Client:
        c = Client(self.broker.port, device_id, password, client_id=device_id)
        self.devices.append(c)
        return c

    def api(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, "/api/v1/fleet" + path, headers=auth(self.acme), **kw)
        assert r.status_code < 300, r.text
        return r.json()


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        time.sleep(0.05)


@pytest.fixture
def stack(
    db: Db, mosquitto: Mosquitto, store: LocalImageStore, ca: CertificateAuthority, tmp_path: Path
) -> Iterator[Stack]:
    acme = make_tenant(db, "Acme")
    with db.sessions.begin() as session:
        service = enrolment.service_account(session)
    auth_dir = tmp_path / "broker-auth"
    BrokerSync(BrokerAuth(auth_dir), db.sessions, ca).sync()  # files first, then the broker
    mosquitto.extra_config = [*BrokerAuth(auth_dir).config_lines(), *QUEUE_LIMIT]
    mosquitto.restart()
    assert mosquitto.proc is not None
    sync = BrokerSync(BrokerAuth(auth_dir, SignalReloader(pid=mosquitto.proc.pid)), db.sessions, ca)
    mqtt = MqttSettings(
        host=mosquitto.host, port=mosquitto.port, username="_ingest", password=service.password
    )
    publisher = PahoPublisher(mqtt, timeout_s=5)
    runtime = FleetRuntime(FleetSettings(), db.sessions, publisher, sync, ca)
    worker = IngestWorker(
        mqtt,
        IngestSettings(client_id=f"ingest-{uuid.uuid4().hex[:8]}", batch_max_wait_ms=10),
        db.sessions,
        store,
    )
    worker.start()
    assert worker.wait_subscribed(10)
    settings = Settings(database_url=db.url)
    app = create_app(settings, engine=db.engine, images=store, fleet=runtime)
    devices: list[Client] = []
    with TestClient(app) as client:
        yield Stack(mosquitto, client, acme, db, devices)
    for d in devices:
        d.close()
    worker.stop()
    publisher.close()


def test_a_claimed_device_is_confined_to_its_subtree_and_revocation_cuts_it_off(stack: Stack):
    assert not stack.connect("till-a", "guess").ok  # not claimed yet: unknown to the broker
    a = stack.connect("till-a", stack.claim("till-a"))
    b = stack.connect("till-b", stack.claim("till-b"))
    assert a.ok and b.ok
    assert not a.publish(device_topic("till-b", "receipt"), b"forged")
    assert not a.publish(device_topic("till-a", "config/desired"), b"{}")  # the server's topic
    assert a.publish(device_topic("till-a", "status"), StatusMessage(state="online").to_json())

    # a cannot read b's commands
    a.subscribe("rm/v1/dev/till-b/cmd/+")
    assert b.subscribe("rm/v1/dev/till-b/cmd/+")
    sent = stack.api("POST", "/devices/till-b/commands", json={"name": "rescan_last"})
    assert sent["status"] == "sent"
    topic, _payload = b.next_message()
    assert topic == device_topic("till-b", f"cmd/{sent['command_id']}")
    assert a.drain() == []

    started = time.monotonic()
    assert stack.api("POST", "/devices/till-a/revoke")["state"] == "revoked"
    assert a.disconnected.wait(5), "the revoked device is still connected"
    assert time.monotonic() - started < 5
    assert not stack.connect("till-a", "anything").ok
    assert b.ok and b.publish(
        device_topic("till-b", "status"), StatusMessage(state="online").to_json()
    )


def test_config_round_trip_with_a_device(stack: Stack):
    password = stack.claim("till-1")
    device = stack.connect("till-1", password)
    assert device.subscribe(device_topic("till-1", "config/desired"))
    state = stack.api(
        "PUT", "/devices/till-1/config", json={"settings": {"ocr_threads": 8, "beep": False}}
    )
    assert (state["desired_version"], state["published"], state["in_sync"]) == (1, True, False)

    topic, payload = device.next_message()
    desired = ConfigDesired.model_validate_json(payload)
    assert topic == device_topic("till-1", "config/desired") and desired.version == 1
    report = ConfigReported(
        version=desired.version,
        settings={"beep": False},
        rejected={"ocr_threads": "must be between 1 and 4"},
    )
    assert device.publish(device_topic("till-1", "config/reported"), report.to_json())

    def reported() -> Any:
        s = stack.api("GET", "/devices/till-1/config")
        return s if s["reported_version"] == 1 else None

    s = eventually(reported)
    assert s["in_sync"] and s["rejected"] == {"ocr_threads": "must be between 1 and 4"}

    # retained: a device that (re)subscribes later gets the newest desired version at once
    stack.api("PUT", "/devices/till-1/config", json={"settings": {"beep": True}})
    restarted = Client(stack.broker.port, "till-1", password, client_id="till-1-restarted")
    stack.devices.append(restarted)
    assert restarted.subscribe(device_topic("till-1", "config/desired"))
    assert ConfigDesired.model_validate_json(restarted.next_message()[1]).version == 2


def test_command_round_trip_with_result_and_health(stack: Stack):
    device = stack.connect("till-1", stack.claim("till-1"))
    assert device.subscribe(device_topic("till-1", "cmd/+"))
    device.publish(
        device_topic("till-1", "status"),
        StatusMessage(
            state="online", agent_version="0.9.0", model_versions={"ocr": "v3"}
        ).to_json(),
    )
    device.publish(
        device_topic("till-1", "telemetry"),
        Telemetry(interval_s=30, outbox_depth=2, cpu_temp_c=55.0, last_read_ms=640.0).to_json(),
    )
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    cmd = stack.api(
        "POST",
        "/devices/till-1/commands",
        json={"name": "test_feedback", "args": {"led": "blink"}, "expires_at": expires.isoformat()},
    )
    topic, payload = device.next_message()
    received = Command.model_validate_json(payload)
    assert str(received.command_id) == cmd["command_id"] and received.args == {"led": "blink"}
    result = CommandResult(command_id=received.command_id, status="succeeded", detail="blinked")
    assert device.publish(topic + "/result", result.to_json())
    assert device.publish(topic + "/result", result.to_json())  # delivered twice: harmless

    def finished() -> Any:
        c = stack.api("GET", f"/devices/till-1/commands/{cmd['command_id']}")
        return c if c["status"] == "succeeded" else None

    assert eventually(finished)["detail"] == "blinked"

    overview = eventually(
        lambda: (
            (o := stack.api("GET", "/overview"))["devices"]["online"] == 1
            and o["queue_depth"]["total"] == 2
            and o
        )
    )
    assert overview["agent_versions"] == {"0.9.0": 1}
    assert overview["temperature_c"]["max"] == 55.0


def test_removing_a_device_cuts_it_off_and_clears_its_retained_config(stack: Stack):
    password = stack.claim("till-r")
    device = stack.connect("till-r", password)
    assert device.ok
    stack.api("PUT", "/devices/till-r/config", json={"settings": {"beep": False}})

    started = time.monotonic()
    removed = stack.api("DELETE", "/devices/till-r")
    assert removed["deleted"]["broker_accounts"] == 1
    assert device.disconnected.wait(5), "the removed device is still connected"
    assert time.monotonic() - started < 5
    assert not stack.connect("till-r", password).ok  # its password is gone

    # what it left retained at the broker is gone too: a new subscriber of the subtree (the
    # same organisation enrolling the scanner again) gets no stale configuration
    again = stack.connect("till-r", stack.claim("till-r"))
    assert again.subscribe(device_topic("till-r", "config/desired"))
    assert again.drain() == []
