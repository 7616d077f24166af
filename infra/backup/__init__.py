"""Backups: PostgreSQL dumps with manifests, verification by restore, image copies, retention."""
