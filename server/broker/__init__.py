"""Embedded MQTT 3.1.1 broker: the single-machine default, so the demo needs no Mosquitto."""

from server.broker.broker import Broker, EmbeddedBroker

__all__ = ["Broker", "EmbeddedBroker"]
