"""Migrations on both databases: upgrade to head, models match, downgrade to nothing."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from server.db.engine import create_db_engine
from server.db.migrate import alembic_config, head_revision, is_at_head, migrate


def test_upgrade_matches_models_and_downgrades(db_url: str):
    engine = create_db_engine(db_url)
    try:
        assert not is_at_head(engine)
        migrate(db_url)
        migrate(db_url)  # a second run is a no-op
        assert is_at_head(engine)
        assert head_revision() is not None
        command.check(alembic_config(db_url))  # raises if the models drifted from migrations
        tables = set(inspect(engine).get_table_names())
        assert {
            "organizations",
            "api_tokens",
            "devices",
            "receipts",
            "receipt_images",
            "dead_letters",
        } <= tables
        command.downgrade(alembic_config(db_url), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
