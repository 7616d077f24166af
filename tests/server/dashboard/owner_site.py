"""A dashboard on a migrated database with a fleet runtime whose publisher is in memory:
Acme with an online scanner (heartbeat, configuration, a command with its result) and a silent
one, Globex with its own scanner; users of each role."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.protocol import CommandResult, ConfigReported, StatusMessage, Telemetry, device_topic
from server.accounts.roles import Role
from server.api.app import create_app
from server.fleet.publisher import MemoryPublisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.api_keys.conftest import csrf
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user, ingest_receipts, standard_receipts


@dataclass
class OwnerSite:
    db: Db
    store: LocalImageStore
    client: TestClient
    publisher: MemoryPublisher
    acme: Tenant

    def login(self, email: str) -> str:
        """Sign in as `email`; the CSRF token of the session."""
        self.client.cookies.clear()
        token = csrf(self.client.get("/app/login").text)
        r = self.client.post(
            "/app/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/app/team"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return csrf(self.client.get("/app/team").text)


def heartbeat(device: str, **values: object) -> list[tuple[str, bytes]]:
    status = StatusMessage(state="online", agent_version="1.4.2", model_versions={"ocr": "2024.06"})
    beat = Telemetry(interval_s=30, **values)  # type: ignore[arg-type]
    return [
        (device_topic(device, "status"), status.to_json()),
        (device_topic(device, "telemetry"), beat.to_json()),
    ]


@pytest.fixture
def owner_site(db: Db, store: LocalImageStore) -> Iterator[OwnerSite]:
    acme = make_tenant(db, "Acme", "till-1", "till-2", plan="enterprise")
    make_tenant(db, "Globex", "globex-1")
    add_user(db, "Acme", "owner@acme.test")
    add_user(db, "Acme", "admin@acme.test", Role.ADMIN)
    add_user(db, "Acme", "member@acme.test", Role.MEMBER)
    add_user(db, "Acme", "viewer@acme.test", Role.VIEWER)
    add_user(db, "Globex", "owner@globex.test")
    ingest_receipts(db, store, "till-1", standard_receipts())
    ingest_receipts(db, store, "globex-1", standard_receipts())
    ingest(db, store, heartbeat("till-1", outbox_depth=3, last_read_ms=912.0, cpu_temp_c=54.5))
    ingest(db, store, heartbeat("globex-1", outbox_depth=7))
    publisher = MemoryPublisher()
    runtime = FleetRuntime(settings=FleetSettings(), sessions=db.sessions, publisher=publisher)
    settings = Settings(
        database_url=db.url,
        secret_key=SecretStr("o" * 40),
        image_store={"type": "local", "root": str(store.root)},
    )
    app = create_app(settings, engine=db.engine, images=store, fleet=runtime)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {acme.token}"}
        r = client.put(
            "/api/v1/fleet/devices/till-1/config",
            json={"settings": {"ocr_threads": 2}},
            headers=auth,
        )
        assert r.status_code == 200, r.text
        r = client.post(
            "/api/v1/fleet/devices/till-1/commands", json={"name": "rescan_last"}, headers=auth
        )
        assert r.status_code == 201, r.text
        command_id = r.json()["command_id"]
        ingest(
            db,
            store,
            [
                (
                    device_topic("till-1", "config/reported"),
                    ConfigReported(version=1, settings={"ocr_threads": 2}).to_json(),
                ),
                (
                    device_topic("till-1", f"cmd/{command_id}/result"),
                    CommandResult(
                        command_id=command_id,
                        status="succeeded",
                        detail="read again",
                        finished_at=dt.datetime.now(dt.UTC),
                    ).to_json(),
                ),
            ],
        )
        yield OwnerSite(db, store, client, publisher, acme)
