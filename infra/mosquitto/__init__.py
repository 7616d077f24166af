"""Mosquitto for the compose stack: its ACL, generated from the MQTT protocol v1 topic table."""
