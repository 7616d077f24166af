"""A small synchronous paho client for broker tests: connect result, subscribe result, inbox."""

from __future__ import annotations

import queue
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

TIMEOUT = 5.0


class TrackingContext(ssl.SSLContext):
    """An SSLContext that remembers its sockets: paho leaves one whose handshake failed open."""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        self.__dict__.setdefault("sockets", []).append(sock)
        return sock

    def close_sockets(self) -> None:
        for sock in self.__dict__.get("sockets", []):
            sock.close()


class Client:
    """Connects on creation (loop thread started); records CONNACK, SUBACKs and messages."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        tls: TrackingContext | None = None,
        host: str = "127.0.0.1",
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack: ReasonCode | None = None
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subacks: queue.Queue[list[Any]] = queue.Queue()
        self._pubacks: dict[int, ReasonCode] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or (username or "anon"),
            protocol=protocol,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.error: Exception | None = None
        self._tls = tls
        try:
            self.client.connect(host, port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc
            self.disconnected.set()
            if tls is not None:
                tls.close_sockets()
            return
        self.client.loop_start()
        self.wait_connack()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code
        if not reason_code.is_failure:
            self.connected.set()
        else:
            self.disconnected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self.disconnected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subacks.put(list(reason_codes))

    def _on_message(self, client, userdata, message) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._pubacks[mid] = reason_code

    def wait_connack(self) -> None:
        deadline = threading.Event()
        for _ in range(int(TIMEOUT / 0.05)):
            if self.connected.is_set() or self.disconnected.is_set():
                return
            deadline.wait(0.05)

    @property
    def ok(self) -> bool:
        return self.connected.is_set()

    def subscribe(self, topic: str, qos: int = 1) -> bool:
        """Subscribe and wait for the SUBACK; True when the broker granted it."""
        self.client.subscribe(topic, qos)
        codes = self._subacks.get(timeout=TIMEOUT)
        return not codes[0].is_failure

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish QoS 1 and wait for the PUBACK; True when the broker accepted the message.

        (MQTT 5 tells a denied publish by the PUBACK's reason code, 135 "Not authorized".)
        """
        info = self.client.publish(topic, payload, qos)
        info.wait_for_publish(timeout=TIMEOUT)
        assert info.is_published(), f"no PUBACK for {topic}"
        for _ in range(100):
            if info.mid in self._pubacks:
                return not self._pubacks.pop(info.mid).is_failure
            threading.Event().wait(0.01)
        raise AssertionError(f"PUBACK callback for {topic} never ran")

    def next_message(self, timeout: float = TIMEOUT) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def drain(self, quiet_s: float = 0.3) -> list[tuple[str, bytes]]:
        """Every message that arrives until none has for `quiet_s`."""
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=quiet_s))
            except queue.Empty:
                return out

    def close(self) -> None:
        if self.error is None:
            self.client.disconnect()
            self.client.loop_stop()
        if self._tls is not None:
            self._tls.close_sockets()
