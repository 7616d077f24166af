"""The agent's MQTT link over TLS with a client certificate and a password from a file, against a
real Mosquitto configured from the registry (password file, ACL, TLS listener with the project's
CA): the scan reaches the ingest user and the server's delivery ack empties the outbox; a wrong
password never gets in."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge_agent.mqtt import BrokerConfig, MqttLink, TlsConfig
from edge_agent.outbox import Outbox, OutboxConfig
from models.protocol import DeliveryAck, StatusMessage, device_topic
from tests.edge_agent.test_mqtt import receipt_scan
from tests.provisioning.test_broker import Fleet, fleet, tls_fleet  # noqa: F401  (pytest fixtures)


def tls_link(fleet: Fleet, pki: Path, port: int, tmp_path: Path, password: str) -> MqttLink:
    secret = tmp_path / "broker-password"
    secret.write_text(password + "\n")
    config = BrokerConfig(
        host="localhost",
        port=port,
        username=fleet.creds["dev-a"].username,
        password_file=secret,
        tls=TlsConfig(
            ca_file=pki / "ca.pem", cert_file=pki / "dev-a.pem", key_file=pki / "dev-a.key"
        ),
        reconnect_min_s=0.2,
        reconnect_max_s=0.5,
    )
    outbox = Outbox(OutboxConfig(path=tmp_path / "outbox.db"))
    return MqttLink(
        "dev-a", config, outbox, status=lambda: StatusMessage(state="online", agent_version="t")
    )


def wait(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_scan_over_tls_reaches_ingest_and_its_ack_empties_the_outbox(
    tls_fleet, tmp_path: Path
) -> None:
    fleet, _ca, pki, port = tls_fleet
    ingest = fleet.connect("ingest")
    assert ingest.subscribe("$share/ingest/rm/v1/dev/+/receipt")
    link = tls_link(fleet, pki, port, tmp_path, fleet.creds["dev-a"].password)
    rid = receipt_scan(link.outbox, device="dev-a")
    link.start()
    try:
        topic, payload = ingest.next_message(timeout=15)
        assert topic == device_topic("dev-a", "receipt")
        assert json.loads(payload)["receipt_id"] == rid
        assert link.outbox.stats().depth == 2  # the broker has it; the server has not said so
        ack = DeliveryAck(receipts=[rid], images=[rid])
        assert ingest.publish(device_topic("dev-a", "ack"), ack.to_json())
        assert wait(lambda: link.outbox.stats().depth == 0)
    finally:
        link.stop()


def test_a_wrong_password_over_tls_is_refused(tls_fleet, tmp_path: Path) -> None:
    fleet, _ca, pki, port = tls_fleet
    link = tls_link(fleet, pki, port, tmp_path, "not-the-password")
    receipt_scan(link.outbox, device="dev-a")
    link.start()
    try:
        time.sleep(2)
        assert link.published == 0
        assert not link.connected
        assert link.outbox.stats().depth == 2
    finally:
        link.stop()
