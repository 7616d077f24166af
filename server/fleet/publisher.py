"""Server -> device messages: the `Publisher` seam and its paho-mqtt implementation.

The API publishes a device's desired configuration (retained) and its commands (QoS 1) after
the request's transaction has committed. `Publisher.publish` returns only once the broker has
acknowledged the message and raises `PublishError` otherwise, so the caller knows whether to
mark it published; what was not published stays pending in the database and is sent again by
the next publish for that device or by ``receipts provision republish``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.settings import MqttSettings

logger = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not take the message (unreachable, refused, or no PUBACK in time)."""


class Publisher(Protocol):
    """Delivers one message to the broker.

    - `publish` SHALL return only after the broker acknowledged the message (QoS 1: PUBACK
      with a success reason) and SHALL raise `PublishError` otherwise.
    - `expires_at`, when given, SHOULD become the message's MQTT 5 expiry, so that a broker
      does not deliver a stale command to a device that reconnects late.
    """

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> None: ...


@dataclass
class MemoryPublisher:
    """Keeps what it is given; `fail` makes it refuse (for tests of the pending path)."""

    messages: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    fail: bool = False

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> None:
        if self.fail:
            raise PublishError("the broker is unreachable (MemoryPublisher.fail)")
        self.messages.append((topic, payload, qos, retain))


class PahoPublisher:
    """A paho client of the API process, connected on first use and kept (thread-safe)."""

    def __init__(
        self,
        mqtt: MqttSettings,
        *,
        client_id: str | None = None,
        timeout_s: float = 5.0,
        clock: Any = None,
    ) -> None:
        self.mqtt = mqtt
        self.client_id = client_id or f"rm-api-{uuid.uuid4().hex[:12]}"
        self.timeout_s = timeout_s
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._client: paho.Client | None = None
        self._refusals: dict[int, str] = {}
        self._refusals_lock = threading.Lock()

    # ------------------------------------------------------------------ connection

    def _build(self) -> paho.Client:
        v5 = self.mqtt.protocol == "5"
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        if self.mqtt.username is not None:
            password = self.mqtt.password.get_secret_value() if self.mqtt.password else None
            client.username_pw_set(self.mqtt.username, password)
        if self.mqtt.tls_ca is not None:
            client.tls_set(
                ca_certs=str(self.mqtt.tls_ca),
                certfile=str(self.mqtt.tls_cert) if self.mqtt.tls_cert else None,
                keyfile=str(self.mqtt.tls_key) if self.mqtt.tls_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.error(
                "broker %s:%d refused the API publisher: %s", self.mqtt.host, self.mqtt.port, reason
            )
            return
        logger.info("API publisher connected to %s:%d", self.mqtt.host, self.mqtt.port)
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            logger.warning("API publisher lost the broker (%s); reconnecting", reason)

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        if reason is not None and reason.is_failure:
            with self._refusals_lock:
                self._refusals[mid] = str(reason)

    def _ensure_connected(self) -> paho.Client:
        with self._lock:
            if self._client is None:
                self._client = self._build()
                self._client.connect_async(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive_s)
                self._client.loop_start()
            client = self._client
        if not self._connected.wait(self.timeout_s):
            raise PublishError(
                f"the broker at {self.mqtt.host}:{self.mqtt.port} is not reachable "
                f"(no connection within {self.timeout_s:g} s)"
            )
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
                self._connected.clear()

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> None:
        client = self._ensure_connected()
        properties = None
        if self.mqtt.protocol == "5" and expires_at is not None:
            remaining = (expires_at - self._clock()).total_seconds()
            if remaining <= 0:
                raise PublishError(f"the message to {topic} expired at {expires_at.isoformat()}")
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = max(1, math.ceil(remaining))
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(f"publish to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise PublishError(f"the broker did not acknowledge {topic} in {self.timeout_s:g} s")
        with self._refusals_lock:
            refusal = self._refusals.pop(info.mid, None)
        if refusal is not None:
            raise PublishError(
                f"the broker refused {topic} ({refusal}): the server's broker account needs "
                "write access to config/desired and cmd/+ (role ingest)"
            )
