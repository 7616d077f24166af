"""The broker edge of ingest: a paho-mqtt 2.x client with a persistent session and manual acks."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from models.protocol import subscription
from server.settings import IngestSettings, MqttSettings

logger = logging.getLogger(__name__)

#: What ingest subscribes to, with the QoS of each (telemetry is sent at QoS 0).
SUBSCRIPTIONS = (
    ("receipt", 1),
    ("image/+", 1),
    ("status", 1),
    ("telemetry", 1),
    ("config/reported", 1),
    ("cmd/+/result", 1),
)


def subscription_filters(group: str | None) -> list[tuple[str, int]]:
    """Topic filters of every device's messages, shared by `group` when one is set."""
    prefix = f"$share/{group}/" if group else ""
    return [(prefix + subscription(leaf), qos) for leaf, qos in SUBSCRIPTIONS]


def build_client(mqtt: MqttSettings, ingest: IngestSettings) -> paho.Client:
    """A client whose session survives disconnects and who acks only when told to."""
    v5 = mqtt.protocol == "5"
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=ingest.client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else False,
    )
    client.manual_ack_set(True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if mqtt.username is not None:
        password = mqtt.password.get_secret_value() if mqtt.password else None
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls_ca is not None:
        client.tls_set(
            ca_certs=str(mqtt.tls_ca),
            certfile=str(mqtt.tls_cert) if mqtt.tls_cert else None,
            keyfile=str(mqtt.tls_key) if mqtt.tls_key else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client


def connect_async(client: paho.Client, mqtt: MqttSettings, ingest: IngestSettings) -> None:
    """Start connecting in the background; paho keeps reconnecting while the loop runs."""
    if mqtt.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = ingest.session_expiry_s
        props.ReceiveMaximum = min(65535, max(100, ingest.batch_size * 4))
        client.connect_async(
            mqtt.host, mqtt.port, mqtt.keepalive_s, clean_start=False, properties=props
        )
    else:
        client.connect_async(mqtt.host, mqtt.port, mqtt.keepalive_s)


def subscribe(client: paho.Client, mqtt: MqttSettings, ingest: IngestSettings) -> None:
    filters = subscription_filters(ingest.shared_group)
    if mqtt.protocol == "5":
        client.subscribe([(topic, SubscribeOptions(qos=qos)) for topic, qos in filters])
    else:
        client.subscribe(filters)
    logger.info("subscribing to %s", ", ".join(t for t, _ in filters))


OnMessage = Callable[[str, bytes, int, int], None]


def install_callbacks(
    client: paho.Client,
    mqtt: MqttSettings,
    ingest: IngestSettings,
    *,
    on_message: OnMessage,
    on_connected: Callable[[], None],
    on_subscribed: Callable[[bool], None],
) -> None:
    """Wire paho's callbacks to ours: `on_message(topic, payload, qos, mid)`."""

    def _on_connect(c: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.error("broker %s:%d refused the connection: %s", mqtt.host, mqtt.port, reason)
            return
        logger.info(
            "connected to %s:%d as %s (session present: %s)",
            mqtt.host,
            mqtt.port,
            ingest.client_id,
            flags.session_present,
        )
        on_connected()
        subscribe(c, mqtt, ingest)

    def _on_subscribe(_c: paho.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            logger.error(
                "broker refused subscriptions (%s); if it lacks shared subscriptions, "
                "set RM_INGEST__SHARED_GROUP= (empty)",
                ", ".join(failed),
            )
        on_subscribed(not failed)

    def _on_disconnect(_c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.warning("lost %s:%d (%s); reconnecting", mqtt.host, mqtt.port, reason)
        else:
            logger.info("disconnected from %s:%d", mqtt.host, mqtt.port)

    def _on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        on_message(message.topic, bytes(message.payload), message.qos, message.mid)

    client.on_connect = _on_connect
    client.on_subscribe = _on_subscribe
    client.on_disconnect = _on_disconnect
    client.on_message = _on_message
