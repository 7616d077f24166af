"""The central server: ingest of scanner messages, storage, and the REST API."""
