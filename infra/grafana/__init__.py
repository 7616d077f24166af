"""Grafana: dashboards as code and their sync into a Grafana instance."""
