"""The isolation world, built once per module on each database (SQLite, then PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from provisioning.ca import CertificateAuthority
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.local import LocalImageStore, LocalImageStoreConfig
from tests.conftest import create_pg_database, drop_pg_database
from tests.server.conftest import Db
from tests.server.isolation.world import World, build_app, populate


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("isolation")
    url = f"sqlite:///{tmp / 'receipts.db'}" if request.param == "sqlite" else create_pg_database()
    try:
        migrate(url)
        engine = create_db_engine(url)
        db = Db(url, engine, session_factory(engine))
        store = LocalImageStore(LocalImageStoreConfig(root=tmp / "images"))
        app = build_app(db, store, tmp, CertificateAuthority.create("isolation CA"))
        a = populate(db, store, app, "Acme", tmp)
        b = populate(db, store, app, "Globex", tmp)
        with TestClient(app) as client:
            yield World(db, app, client, store, a, b)
        engine.dispose()
    finally:
        if request.param == "postgres":
            drop_pg_database(url)
