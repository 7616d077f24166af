"""MQTT link of the agent: connects (TLS, username/password), drains the outbox, sends heartbeats.

One thread owns the connection and runs paho's network loop itself, so every callback (CONNACK,
PUBACK, incoming messages) happens on that thread and needs no locks. Each connection is a fresh
paho client with a clean session: the outbox, not paho's memory, is the only queue. While
connected, `MqttLink` publishes the outbox's due messages in order with at most
`BrokerConfig.max_inflight` awaiting their PUBACK, marks a row sent in `on_publish` (the PUBACK),
and deletes it when the server's delivery ack (`ack` topic) lists it (see edge_agent/outbox.py).
When the connection drops, the in-flight window is forgotten with the client and the next
connection sends again every row the server has not acknowledged, oldest first (the server is
idempotent on the receipt id, so a second copy is harmless).

Also: the last will ``offline`` on `status` (QoS 1, retained), ``online`` with versions on every
connect (retained), an explicit ``offline`` on clean shutdown, reconnects with exponential
backoff and jitter, the telemetry heartbeat (QoS 0), and the device's `config/desired` and
`cmd/+` subscriptions handed to a `CommandHandler` (edge_agent.fleet.FleetHandler).

Control messages (``config/reported``, command results) go out through `publish_control`, QoS 1,
from any thread. They are not durable here: the queue is emptied at each new connection, and
then `CommandHandler.on_connected` queues everything the server must still hear (the handler
keeps it on disk until `on_ack` says the broker has it).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field, model_validator

from edge_agent.configbase import ExistingFile, StrictModel
from edge_agent.outbox import Outbox
from models.protocol import (
    Command,
    ConfigDesired,
    DeliveryAck,
    ProtocolError,
    StatusMessage,
    Telemetry,
    decode,
    device_topic,
    parse_topic,
)

log = logging.getLogger(__name__)


class TlsConfig(StrictModel):
    """TLS to the broker. Without ca_file the system's CAs are trusted."""

    ca_file: ExistingFile | None = Field(default=None, description="CA certificate (PEM).")
    cert_file: ExistingFile | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one."
    )
    key_file: ExistingFile | None = Field(
        default=None, description="Private key of the client certificate (PEM)."
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file, or neither")
        return self


class BrokerConfig(StrictModel):
    """The MQTT broker. The password never sits in the YAML: an env var or a file holds it."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host name or IP.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    keepalive: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds.")
    tls: TlsConfig | None = Field(default=None, description="TLS settings; absent: plain TCP.")
    username: str | None = Field(default=None, description="Username (usually the device id).")
    password_env: str | None = Field(
        default=None, description="Name of the environment variable holding the password."
    )
    password_file: ExistingFile | None = Field(
        default=None, description="File whose first line is the password."
    )
    max_inflight: int = Field(
        default=20, ge=1, le=1000, description="Messages awaiting PUBACK at any time."
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest reconnect delay.")
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Give up a connection attempt after this long."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_plain_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError(
                "'password' is not allowed in the config file: put it in an environment "
                "variable named by broker.password_env, or a file named by broker.password_file"
            )
        return data

    @model_validator(mode="after")
    def _password_source(self) -> BrokerConfig:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.password_env and self.password_env not in os.environ:
            raise ValueError(f"environment variable {self.password_env} (password_env) is not set")
        return self

    def password(self) -> str | None:
        """The broker password from its env var or file, read when connecting."""
        if self.password_env:
            return os.environ.get(self.password_env)
        if self.password_file:
            lines = self.password_file.read_text(encoding="utf-8").splitlines()
            return lines[0] if lines else ""
        return None


class CommandHandler(Protocol):
    """What the agent does with messages from the server (edge_agent.fleet.FleetHandler).

    Every method is called on the link's thread and SHALL return quickly (queue the work).
    """

    def on_config(self, desired: ConfigDesired) -> None: ...

    def on_command(self, command: Command) -> None: ...

    def on_connected(self) -> None:
        """A connection was accepted: queue (`publish_control`) what the server must hear."""
        ...


class LoggingCommandHandler:
    """Logs desired configs and commands without acting on them (no fleet management)."""

    def on_config(self, desired: ConfigDesired) -> None:
        log.info("desired config version %d received (not applied)", desired.version)

    def on_command(self, command: Command) -> None:
        log.info("command %s %r received (not handled)", command.command_id, command.name)

    def on_connected(self) -> None:
        return None


def client_tls_context(tls: TlsConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file else None,
    )
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


class MqttLink:
    """The agent's connection to the broker; `start()` runs it on its own thread."""

    def __init__(
        self,
        device_id: str,
        config: BrokerConfig,
        outbox: Outbox,
        *,
        status: Callable[[], StatusMessage],
        telemetry: Callable[[], Telemetry] | None = None,
        telemetry_interval_s: float = 60.0,
        handler: CommandHandler | None = None,
    ) -> None:
        self.device_id = device_id
        self.config = config
        self.outbox = outbox
        self._status = status
        self._telemetry = telemetry
        self.telemetry_interval_s = telemetry_interval_s
        self._handler: CommandHandler = handler or LoggingCommandHandler()
        self._control: queue.SimpleQueue[tuple[str, bytes, bool, Callable[[], None] | None]] = (
            queue.SimpleQueue()
        )
        self._control_acks: dict[int, Callable[[], None] | None] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected_since: dt.datetime | None = None
        self.published = 0  # messages acknowledged by the broker since start
        # per-connection state, touched only by the link's thread
        self._inflight: dict[int, int] = {}
        self._connack: ReasonCode | None = None
        self._next_due_check = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self.connected_since is not None

    def notify(self) -> None:
        """Tell the link that the outbox has new messages."""
        self._wake.set()

    def publish_control(
        self,
        leaf: str,
        payload: bytes,
        *,
        retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        """Publish `payload` on this device's `leaf` with QoS 1 (thread-safe; see the module doc).

        `on_ack` runs on the link's thread when the broker acknowledged it.
        """
        self._control.put((self._topic(leaf), payload, retain, on_ack))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Say offline, disconnect and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Connect, publish, reconnect with backoff until `stop()`."""
        delay = self.config.reconnect_min_s
        where = f"{self.config.host}:{self.config.port}"
        while not self._stop.is_set():
            client = self._new_client()
            try:
                client.connect(self.config.host, self.config.port, self.config.keepalive)
            except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError)
                log.warning(
                    "cannot connect to broker %s: %s; retrying in %.1f s", where, exc, delay
                )
            else:
                if self._session(client):
                    delay = self.config.reconnect_min_s
            finally:
                self.connected_since = None
                sock = client.socket()
                if sock is not None:  # refused, timed out or stopped: drop this client's socket
                    sock.close()
            if self._stop.is_set():
                break
            self._stop.wait(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.config.reconnect_max_s)
        log.info("MQTT link stopped")

    # ------------------------------------------------------------------ one connection

    def _topic(self, leaf: str) -> str:
        return device_topic(self.device_id, leaf)

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.connect_timeout = self.config.connect_timeout_s
        if self.config.tls is not None:
            client.tls_set_context(client_tls_context(self.config.tls))
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password())
        offline = StatusMessage(state="offline").to_json()
        client.will_set(self._topic("status"), offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._inflight, self._connack = {}, None
        self._control_acks = {}
        return client

    def _session(self, client: mqtt.Client) -> bool:
        """Serve one connection until it drops or the link stops; True if it was accepted."""
        deadline = time.monotonic() + self.config.connect_timeout_s
        next_beat = 0.0
        while not self._stop.is_set():
            rc = client.loop(timeout=0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                if self.connected:
                    log.warning("connection to broker lost (%s)", mqtt.error_string(rc))
                break
            if self._connack is None:
                if time.monotonic() > deadline:
                    log.warning(
                        "broker did not answer CONNECT within %.0f s", self.config.connect_timeout_s
                    )
                    break
                continue
            if self._connack.is_failure:
                break
            self._pump_control(client)
            if time.monotonic() >= self._next_due_check:  # resends fall due with time
                self._next_due_check = time.monotonic() + 1.0
                self._wake.set()
            self._pump(client)
            if self._telemetry is not None and time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.telemetry_interval_s
                client.publish(self._topic("telemetry"), self._telemetry().to_json(), qos=0)
        accepted = self._connack is not None and not self._connack.is_failure
        if self._stop.is_set() and self.connected:
            self._say_offline(client)
        return accepted

    def _pump(self, client: mqtt.Client) -> None:
        """Publish stored messages while the in-flight window has room."""
        room = self.config.max_inflight - len(self._inflight)
        if room <= 0 or not self._wake.is_set():
            return
        self._wake.clear()
        rows = self.outbox.due(limit=room, exclude=set(self._inflight.values()))
        for row in rows:
            info = client.publish(row.topic, row.payload, qos=row.qos)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.error("publish of %s failed: %s", row.topic, mqtt.error_string(info.rc))
                self._wake.set()
                return
            self._inflight[info.mid] = row.id
            log.debug("published %s (outbox row %d, mid %d)", row.topic, row.id, info.mid)
        if len(rows) == room:  # the window is full: there may be more
            self._wake.set()

    def _pump_control(self, client: mqtt.Client) -> None:
        while True:
            try:
                topic, payload, retain, on_ack = self._control.get_nowait()
            except queue.Empty:
                return
            info = client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._control_acks[info.mid] = on_ack
            else:  # the connection is going; on_connected will queue it again
                log.warning("publish of %s failed: %s", topic, mqtt.error_string(info.rc))

    def _say_offline(self, client: mqtt.Client) -> None:
        info = client.publish(
            self._topic("status"), StatusMessage(state="offline").to_json(), qos=1, retain=True
        )
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        client.disconnect()
        client.loop(timeout=0.1)

    # ------------------------------------------------------------------ callbacks

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        self._connack = reason_code
        where = f"{self.config.host}:{self.config.port}"
        if reason_code.is_failure:
            log.error(
                "broker %s refused the connection: %s (check broker.username, the password "
                "and the broker's ACL for device %s)",
                where,
                reason_code,
                self.device_id,
            )
            return
        self.connected_since = dt.datetime.now(dt.UTC)
        stats = self.outbox.stats()
        log.info(
            "connected to broker %s as %s; replaying %d stored message(s)",
            where,
            self.device_id,
            stats.depth,
        )
        client.subscribe(
            [
                (self._topic("config/desired"), 1),
                (self._topic("cmd/+"), 1),
                (self._topic("ack"), 1),
            ],
        )
        self.outbox.resend_all()
        client.publish(self._topic("status"), self._status().to_json(), qos=1, retain=True)
        while not self._control.empty():  # what is still owed is queued again just below
            self._control.get_nowait()
        self._handler.on_connected()
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if self.connected and not self._stop.is_set():
            log.warning(
                "disconnected from broker (%s); %d message(s) in flight will be replayed",
                reason_code,
                len(self._inflight),
            )
        self.connected_since = None

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if mid in self._control_acks:
            on_ack = self._control_acks.pop(mid)
            if on_ack is not None:
                try:
                    on_ack()
                except Exception:
                    log.exception("acknowledgement handler of message %d failed", mid)
            return
        row = self._inflight.pop(mid, None)
        if row is None:  # status, telemetry: not from the outbox
            return
        self.outbox.mark_sent(row)
        self.published += 1
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parts = parse_topic(msg.topic)
            if parts.kind == "config/desired":
                self._handler.on_config(decode(ConfigDesired, bytes(msg.payload)))
            elif parts.kind == "cmd":
                self._handler.on_command(decode(Command, bytes(msg.payload)))
            elif parts.kind == "ack":
                forgotten = self.outbox.acknowledge(decode(DeliveryAck, bytes(msg.payload)))
                log.debug("delivery ack from the server: %d outbox row(s) done", forgotten)
            else:
                log.warning("ignored message on unexpected topic %s", msg.topic)
        except ProtocolError as exc:
            log.warning("refused message on %s: %s (%s)", msg.topic, exc.message, exc.code)
        except Exception:
            log.exception("handling the message on %s failed", msg.topic)
