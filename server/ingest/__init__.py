"""The ingest worker: MQTT messages from scanners -> rows, in batches, acked after commit."""
