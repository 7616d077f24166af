"""Storage: SQLAlchemy models on one base, engine/session setup, Alembic migrations."""
