"""The MQTT link against a real Mosquitto: drain on PUBACK, replay after outages, status, seams."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.publish as publish_one

from edge_agent.mqtt import BrokerConfig, MqttLink
from edge_agent.outbox import Outbox, OutboxConfig, OutMessage
from models.protocol import Command, ConfigDesired, StatusMessage, Telemetry, device_topic
from tests.edge_agent.helpers import Subscriber

DEVICE = "dev-1"


def receipt_scan(outbox: Outbox, image: bytes = b"\xff\xd8jpeg", device: str = DEVICE) -> str:
    rid = str(uuid.uuid4())
    outbox.add_scan(
        rid,
        [
            OutMessage(
                device_topic(device, "receipt"),
                json.dumps({"receipt_id": rid}).encode(),
                1,
                "receipt",
            ),
            OutMessage(device_topic(device, f"image/{rid}"), image, 1, "image"),
        ],
    )
    return rid


def make_link(mosquitto, tmp_path: Path, **kw) -> tuple[MqttLink, Outbox]:
    outbox = Outbox(OutboxConfig(path=tmp_path / "outbox.db"))
    broker = BrokerConfig(
        host=mosquitto.host, port=mosquitto.port, reconnect_min_s=0.1, reconnect_max_s=0.5, **kw
    )
    link = MqttLink(
        DEVICE,
        broker,
        outbox,
        status=lambda: StatusMessage(state="online", agent_version="test"),
        telemetry=lambda: Telemetry(interval_s=0.2, outbox_depth=outbox.stats().depth),
        telemetry_interval_s=0.2,
    )
    return link, outbox


def test_stored_scans_are_published_and_deleted_on_puback(mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port)
    link, outbox = make_link(mosquitto, tmp_path)
    ids = {receipt_scan(outbox) for _ in range(30)}  # stored before the link even starts
    link.start()
    try:
        assert sub.wait_for(lambda: sub.receipt_ids() == ids)
        assert sub.wait_for(lambda: outbox.stats().depth == 0)
        images = {m.topic.rsplit("/", 1)[1] for m in sub.on("") if "/image/" in m.topic}
        assert images == ids
        status = StatusMessage.model_validate_json(sub.on("/status")[0].payload)
        assert status.state == "online" and status.agent_version == "test"
        assert sub.on("/status")[0].retain is False or True  # delivered live; retained below
        assert sub.wait_for(lambda: len(sub.on("/telemetry")) >= 2)
        beat = Telemetry.model_validate_json(sub.on("/telemetry")[-1].payload)
        assert beat.interval_s == 0.2
        assert link.published == 60
    finally:
        link.stop()
        sub.close()
    late = Subscriber(mosquitto.host, mosquitto.port, topic=device_topic(DEVICE, "status"))
    try:
        assert late.wait_for(lambda: len(late.on("/status")) == 1)
        retained = late.on("/status")[0]
        assert retained.retain
        assert StatusMessage.model_validate_json(retained.payload).state == "offline"
    finally:
        late.close()


def test_broker_outage_while_scanning_loses_nothing(mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port)
    link, outbox = make_link(mosquitto, tmp_path)
    link.start()
    ids: set[str] = set()
    done = threading.Event()

    def scanner() -> None:
        while not done.is_set():
            ids.add(receipt_scan(outbox, image=b"i" * 50_000))
            link.notify()
            time.sleep(0.01)

    thread = threading.Thread(target=scanner)
    thread.start()
    try:
        time.sleep(1.5)  # the broker has saved the subscriber's session by now
        mosquitto.stop()  # the broker goes away mid-stream, with messages in flight
        time.sleep(1.0)
        assert not link.connected
        assert outbox.stats().depth > 0, "scans taken while offline wait in the outbox"
        mosquitto.start()
        time.sleep(0.5)
        done.set()
        thread.join()
        assert sub.wait_for(lambda: sub.receipt_ids() >= ids, timeout=30), (
            f"missing {len(ids - sub.receipt_ids())} of {len(ids)}; outbox {outbox.stats()}; "
            f"{sorted(ids - sub.receipt_ids())[:3]}"
        )
        assert sub.wait_for(lambda: outbox.stats().depth == 0)
    finally:
        done.set()
        link.stop()
        sub.close()


class Recorder:
    def __init__(self) -> None:
        self.configs: list[ConfigDesired] = []
        self.commands: list[Command] = []

    def on_config(self, desired: ConfigDesired) -> None:
        self.configs.append(desired)

    def on_command(self, command: Command) -> None:
        self.commands.append(command)

    def on_connected(self) -> None:
        self.connects = getattr(self, "connects", 0) + 1


def test_desired_config_and_commands_reach_the_handler(mosquitto, tmp_path: Path, caplog) -> None:
    host, port = mosquitto.host, mosquitto.port
    publish_one.single(
        device_topic(DEVICE, "config/desired"),
        ConfigDesired(version=3, settings={"a": 1}).to_json(),
        qos=1,
        retain=True,
        hostname=host,
        port=port,
    )
    recorder = Recorder()
    link, _ = make_link(mosquitto, tmp_path)
    link._handler = recorder
    link.start()
    try:
        deadline = time.monotonic() + 10
        while not (link.connected and recorder.configs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c.version for c in recorder.configs] == [3]
        cid = uuid.uuid4()
        cmd = Command(command_id=cid, name="rescan")
        publish_one.single(
            device_topic(DEVICE, f"cmd/{cid}"), cmd.to_json(), qos=1, hostname=host, port=port
        )
        publish_one.single(
            device_topic(DEVICE, "cmd/bad"), b"{not json", qos=1, hostname=host, port=port
        )
        while len(recorder.commands) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c.command_id for c in recorder.commands] == [cid]
        while "malformed_json" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "malformed_json" in caplog.text, "a bad command is refused with its reason"
        assert link.connected, "and the link keeps running"
    finally:
        link.stop()
