"""A dashboard app on a migrated database with two organisations' receipts and users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.protocol import ReceiptMessage
from server.accounts.roles import Role
from server.api.app import create_app
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.conftest import Db, make_tenant
from tests.server.dashboard.seed import (
    PASSWORD,
    add_image,
    add_user,
    ingest_receipts,
    jpeg_bytes,
    standard_receipts,
)


@dataclass
class Site:
    db: Db
    client: TestClient
    receipts: list[ReceiptMessage]
    other_receipts: list[ReceiptMessage]

    def login(self, email: str, password: str = PASSWORD) -> None:
        page = self.client.get("/app/login")
        token = csrf(page.text)
        resp = self.client.post(
            "/app/login",
            data={
                "email": email,
                "password": password,
                "csrf_token": token,
                "next": "/app/receipts",
            },
            follow_redirects=False,
        )
        assert resp.status_code == 303, resp.text

    def csrf_of(self, path: str) -> str:
        return csrf(self.client.get(path).text)


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def site(db: Db, store: LocalImageStore) -> Iterator[Site]:
    make_tenant(db, "Acme", "scanner-1", "scanner-2")
    make_tenant(db, "Globex", "globex-1")
    receipts = standard_receipts()
    ingest_receipts(db, store, "scanner-1", receipts)
    add_image(db, store, "scanner-1", receipts[0], jpeg_bytes(3, (200, 300)))
    others = standard_receipts()
    ingest_receipts(db, store, "globex-1", others)
    add_user(db, "Acme", "owner@acme.test")
    add_user(db, "Acme", "viewer@acme.test", Role.VIEWER)
    add_user(db, "Globex", "owner@globex.test")
    app = create_app(
        Settings(database_url=db.url, secret_key=SecretStr("s" * 40)),
        engine=db.engine,
        images=store,
    )
    with TestClient(app) as client:
        yield Site(db, client, receipts, others)


from tests.server.dashboard.owner_site import owner_site  # noqa: E402, F401  (a fixture)
