"""The HTTP API: app factory, shared dependencies, error format, health checks."""
