"""Alembic environment: the URL comes from `server.db.migrate`; SQLite migrates in batch mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from server.accounts import models as accounts_models  # noqa: F401  (users, audit...)
from server.analytics.rollup import spend_monthly
from server.datarights import models as datarights_models  # noqa: F401  (deletion records)
from server.db import models  # noqa: F401  (registers the tables on Base.metadata)
from server.db.base import Base
from server.db.engine import create_db_engine
from server.exports import models as exports_models  # noqa: F401  (account codes)
from server.fleet import models as fleet_models  # noqa: F401  (the fleet's tables)
from server.jobs import models as jobs_models  # noqa: F401  (the job queue)
from server.uploads import models as uploads_models  # noqa: F401  (photo uploads)
from server.webhooks import models as webhooks_models  # noqa: F401  (endpoints, deliveries)

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL: run migrations through server.db.migrate.migrate(url)")

#: Tables the migrations keep that no model declares: the trigger-kept, PostgreSQL-only
#: rollup (server/analytics/rollup.py) is read through its own `Table`, never written by ORM.
UNMODELLED_TABLES = frozenset({spend_monthly.name})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave `UNMODELLED_TABLES` out of the models-versus-database comparison."""
    return not (type_ == "table" and name in UNMODELLED_TABLES)


engine = create_db_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Processes starting together (server, ingest) migrate one after the other.
                connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
            context.run_migrations()
        connection.commit()
finally:
    engine.dispose()
