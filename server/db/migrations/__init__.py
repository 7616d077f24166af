"""Alembic migrations of the server database (run through server.db.migrate)."""
