"""The embedded broker against the real paho-mqtt client: QoS 1, sessions, wills, $share."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from server.broker import EmbeddedBroker
from server.broker import packets as p


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("127.0.0.1", 0)
    b.start()
    yield b
    b.stop()


class Collector:
    """A paho client that records what it receives; acks by hand when asked to."""

    def __init__(self, port: int, client_id: str, *, clean: bool = True, manual_ack: bool = False):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean,
            protocol=mqtt.MQTTv311,
        )
        self.client.manual_ack_set(manual_ack)
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.session_present: bool | None = None
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(5), "client did not connect"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.session_present = flags.session_present
        self.connected.set()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(5)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payloads: list[bytes], *, retain: bool = False) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_qos1_roundtrip_and_wildcards(broker: EmbeddedBroker) -> None:
    sub = Collector(broker.port, "sub")
    sub.subscribe("rm/v1/dev/+/receipt")
    sub.subscribe("other/#")
    publish(broker.port, "rm/v1/dev/d1/receipt", [b"a", b"b"])
    publish(broker.port, "rm/v1/dev/d1/telemetry", [b"not for us"])
    publish(broker.port, "other/x/y", [b"c"])
    got = sub.wait_for(3)
    time.sleep(0.2)
    assert sorted(m.payload for m in sub.messages) == [b"a", b"b", b"c"]
    assert all(m.qos == 1 for m in got)
    sub.close()


def test_retained_message_reaches_later_subscriber_and_can_be_cleared(
    broker: EmbeddedBroker,
) -> None:
    publish(broker.port, "rm/v1/dev/d1/status", [b"online"], retain=True)
    first = Collector(broker.port, "late")
    first.subscribe("rm/v1/dev/+/status")
    (msg,) = first.wait_for(1)
    assert msg.payload == b"online" and msg.retain
    first.close()
    publish(broker.port, "rm/v1/dev/d1/status", [b""], retain=True)
    second = Collector(broker.port, "later")
    second.subscribe("rm/v1/dev/+/status")
    time.sleep(0.3)
    assert second.messages == []
    second.close()


def test_persistent_session_redelivers_unacked_and_queues_while_away(
    broker: EmbeddedBroker,
) -> None:
    worker = Collector(broker.port, "ingest", clean=False, manual_ack=True)
    worker.subscribe("rm/v1/dev/+/receipt")
    publish(broker.port, "rm/v1/dev/d1/receipt", [b"r0", b"r1", b"r2", b"r3"])
    got = worker.wait_for(4)
    for m in got[:2]:
        worker.client.ack(m.mid, m.qos)
    time.sleep(0.2)
    worker.close()  # r2 and r3 were never acknowledged
    publish(broker.port, "rm/v1/dev/d1/receipt", [b"r4", b"r5"])

    again = Collector(broker.port, "ingest", clean=False, manual_ack=True)
    assert again.session_present is True
    got = again.wait_for(4)
    time.sleep(0.2)
    assert sorted(m.payload for m in again.messages) == [b"r2", b"r3", b"r4", b"r5"]
    assert {m.payload for m in got if m.dup} == {b"r2", b"r3"}
    again.close()


def test_clean_session_forgets(broker: EmbeddedBroker) -> None:
    worker = Collector(broker.port, "c1", clean=False)
    worker.subscribe("t/#")
    worker.close()
    fresh = Collector(broker.port, "c1", clean=True)
    assert fresh.session_present is False
    publish(broker.port, "t/1", [b"x"])
    time.sleep(0.3)
    assert fresh.messages == []
    fresh.close()


def _raw_connect(port: int, client_id: str, will_topic: str, will_payload: bytes) -> socket.socket:
    def s(v: bytes) -> bytes:
        return struct.pack("!H", len(v)) + v

    flags = 0x02 | 0x04 | (1 << 3) | 0x20  # clean, will, will QoS 1, will retain
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
    body += s(client_id.encode()) + s(will_topic.encode()) + s(will_payload)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(p.encode(p.CONNECT, 0, body))
    assert sock.recv(4) == bytes([0x20, 2, 0, 0])
    return sock


def test_last_will_on_abnormal_disconnect_only(broker: EmbeddedBroker) -> None:
    watcher = Collector(broker.port, "watcher")
    watcher.subscribe("rm/v1/dev/+/status")
    sock = _raw_connect(broker.port, "d1", "rm/v1/dev/d1/status", b"offline")
    sock.close()  # no DISCONNECT: the will must be published
    (msg,) = watcher.wait_for(1)
    assert (msg.topic, msg.payload) == ("rm/v1/dev/d1/status", b"offline")

    sock = _raw_connect(broker.port, "d2", "rm/v1/dev/d2/status", b"offline")
    sock.sendall(p.encode(p.DISCONNECT, 0, b""))
    sock.close()
    time.sleep(0.3)
    assert len(watcher.messages) == 1
    watcher.close()


def test_shared_subscription_splits_the_load(broker: EmbeddedBroker) -> None:
    a = Collector(broker.port, "w-a")
    b = Collector(broker.port, "w-b")
    a.subscribe("$share/ingest/rm/v1/dev/+/receipt")
    b.subscribe("$share/ingest/rm/v1/dev/+/receipt")
    payloads = [f"r{i}".encode() for i in range(10)]
    publish(broker.port, "rm/v1/dev/d1/receipt", payloads)
    deadline = time.monotonic() + 5
    while len(a.messages) + len(b.messages) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    received = [m.payload for m in a.messages + b.messages]
    assert sorted(received) == sorted(payloads)  # each message exactly once
    assert a.messages and b.messages  # and both members took a share
    a.close()
    b.close()


def test_refuses_mqtt5_and_survives_garbage(broker: EmbeddedBroker) -> None:
    v5 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    codes: list[object] = []
    v5.on_connect = lambda c, u, f, rc, pr: codes.append(rc)
    v5.connect("127.0.0.1", broker.port)
    v5.loop_start()
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        time.sleep(0.02)
    v5.loop_stop()
    assert codes and getattr(codes[0], "is_failure", False)

    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(b"\xff\xff\xff\xff\xff\x00garbage")
        sock.settimeout(5)
        assert sock.recv(10) == b""  # the broker hung up on it

    sub = Collector(broker.port, "still-alive")
    sub.subscribe("x")
    publish(broker.port, "x", [b"ok"])
    assert sub.wait_for(1)[0].payload == b"ok"
    sub.close()


def test_authentication_hook() -> None:
    b = EmbeddedBroker("127.0.0.1", 0, authenticate=lambda cid, user, pw: pw == b"secret")
    b.start()
    try:
        results: list[object] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.username_pw_set("dev", "wrong")
        client.on_connect = lambda c, u, f, rc, pr: results.append(rc)
        client.connect("127.0.0.1", b.port)
        client.loop_start()
        deadline = time.monotonic() + 5
        while not results and time.monotonic() < deadline:
            time.sleep(0.02)
        client.loop_stop()
        assert results and getattr(results[0], "is_failure", False)
    finally:
        b.stop()
