"""Shared helpers of the agent's tests: a real MQTT subscriber and a quick reader."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from models.protocol import DeliveryAck, device_topic, parse_topic
from models.receipt import OcrLine, Receipt


class Subscriber:
    """A real MQTT client that records every message under a filter.

    With `acks` (the default) it also plays the server's part of the protocol: it answers each
    receipt and image with the delivery ack the ingest worker sends after its commit, so the
    scanner's outbox forgets them.
    """

    def __init__(
        self, host: str, port: int, topic: str = "rm/v1/dev/#", *, acks: bool = True
    ) -> None:
        self.acks = acks
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        # a persistent session: the broker keeps what arrives while this client reconnects
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{time.time_ns()}",
            clean_session=False,
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._ready.wait(10), "test subscriber could not subscribe"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(msg)
        if not self.acks:
            return
        parts = parse_topic(msg.topic)
        if parts.kind == "receipt":
            ack = DeliveryAck(receipts=[json.loads(msg.payload)["receipt_id"]])
        elif parts.kind == "image":
            ack = DeliveryAck(images=[uuid.UUID(str(parts.ident))])
        else:
            return
        client.publish(device_topic(parts.device_id, "ack"), ack.to_json(), qos=1)

    def receipt_ids(self) -> set[str]:
        return {json.loads(m.payload)["receipt_id"] for m in self.on("/receipt")}

    def on(self, suffix: str) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_for(self, check: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.05)
        return check()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass(frozen=True)
class QuickResult:
    receipt: Receipt
    rectified: np.ndarray


class QuickReader:
    """Reads nothing but the image's size and brightness: fast and deterministic."""

    def read(self, image: np.ndarray) -> QuickResult:
        h, w = image.shape[:2]
        line = OcrLine(
            id=0, text=f"mean {float(image.mean()):.1f}", box=((0, 0), (w, 0), (w, h), (0, h))
        )
        receipt = Receipt(lines=[line], ocr_engine="quick-test", image_size=(w, h))
        return QuickResult(receipt, image)
