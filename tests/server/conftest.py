"""Server fixtures: a migrated database, a registered organisation and device, an image store."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

with warnings.catch_warnings():
    # Starlette 1.x nags that its TestClient wants the `httpx2` fork; plain httpx works.
    warnings.simplefilter("ignore")
    import starlette.testclient  # noqa: F401

from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.ingest.interpret import Incoming
from server.ingest.service import BatchResult, ingest_batch
from server.organizations import service as orgs


@dataclass
class Db:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    """A database (SQLite and PostgreSQL in turn) migrated to head by Alembic."""
    migrate(db_url)
    engine = create_db_engine(db_url)
    yield Db(db_url, engine, session_factory(engine))
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    return LocalImageStore(LocalImageStoreConfig(root=tmp_path / "images"))


@dataclass
class Tenant:
    name: str
    device_id: str
    token: str


def make_tenant(db: Db, name: str, *device_ids: str, plan: str = "starter") -> Tenant:
    """An organisation on `plan` (new ones start on Starter: 50 receipts a month, then held)
    with its devices and an operator token."""
    with db.sessions.begin() as session:
        orgs.create_organization(session, name).plan = plan
        for device_id in device_ids:
            orgs.add_device(session, name, device_id)
        token = orgs.create_token(session, name).token
    return Tenant(name, device_ids[0] if device_ids else "", token)


@pytest.fixture
def tenant(db: Db) -> Tenant:
    return make_tenant(db, "Acme", "scanner-1")


def ingest(db: Db, store: LocalImageStore, messages: Sequence[tuple[str, bytes]]) -> BatchResult:
    """Write messages as one batch, exactly as the worker does (its transaction included)."""
    now = dt.datetime.now(dt.UTC)
    batch = [Incoming(topic, payload, now) for topic, payload in messages]
    with db.sessions.begin() as session:
        return ingest_batch(session, store, batch, payload_limit=1024)
