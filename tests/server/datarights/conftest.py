"""Two organisations with everything an organisation can have, sharing one image."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from server.accounts import service as accounts
from server.accounts.audit import Actor
from server.accounts.roles import Role
from server.accounts.service import AccountKeys
from server.api.app import create_app
from server.dashboard.corrections import correct_receipt
from server.dashboard.repository import ReceiptBrowser
from server.images.local import LocalImageStore
from server.organizations import service as orgs
from server.settings import Settings
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic
from tests.server.webhooks.conftest import org_id, register

SHARED, ACME_ONLY, GLOBEX_ONLY = jpeg_bytes(11), jpeg_bytes(22), jpeg_bytes(33)


@dataclass
class World:
    db: Db
    store: LocalImageStore
    client: TestClient
    acme: uuid.UUID
    globex: uuid.UUID
    acme_owner: dict[str, str]
    acme_admin: dict[str, str]
    globex_owner: dict[str, str]
    webhook_secret: str
    acme_receipts: list[uuid.UUID]


def _token(db: Db, org: str, role: Role) -> dict[str, str]:
    with db.sessions.begin() as session:
        return {
            "Authorization": f"Bearer {orgs.create_token(session, org, role.value, role).token}"
        }


def _receipts_with_images(db: Db, store, device: str, images: list[bytes]) -> list[uuid.UUID]:
    msgs = [receipt_message(image=data, merchant=f"Shop {i}") for i, data in enumerate(images)]
    ingest(db, store, [(receipt_topic(device), m.to_json()) for m in msgs])
    ingest(
        db,
        store,
        [(image_topic(device, m.receipt_id), d) for m, d in zip(msgs, images, strict=True)],
    )
    return [m.receipt_id for m in msgs]


@pytest.fixture
def world(db: Db, store: LocalImageStore) -> Iterator[World]:
    make_tenant(db, "Acme", "scanner-1", "scanner-2")
    make_tenant(db, "Globex", "globex-1")
    acme, globex = org_id(db, "Acme"), org_id(db, "Globex")
    secret = register(db, "Acme", "http://127.0.0.1:9/acme-hook").secret
    register(db, "Globex", "http://127.0.0.1:9/globex-hook")
    user_id = add_user(db, "Acme", "owner@acme.test")
    add_user(db, "Globex", "owner@globex.test")
    acme_receipts = _receipts_with_images(db, store, "scanner-1", [SHARED, ACME_ONLY])
    _receipts_with_images(db, store, "globex-1", [SHARED, GLOBEX_ONLY])
    ingest(db, store, [(receipt_topic("scanner-2"), b"{not json")])  # a dead letter of Acme's
    ingest(db, store, [(receipt_topic("globex-1"), b"{not json either")])
    settings = Settings(database_url=db.url, secret_key="k" * 40)
    with db.sessions.begin() as session:
        browser = ReceiptBrowser(session, acme)
        record = browser.for_update(acme_receipts[0])
        assert record is not None
        correct_receipt(session, browser, record, {"merchant": "Shop Zero"}, Actor("x", user_id))
        user = accounts.authenticate(session, "owner@acme.test", PASSWORD)
        assert user is not None
        accounts.start_session(session, user, AccountKeys.from_settings(settings))
    app = create_app(settings, engine=db.engine, images=store)
    with TestClient(app) as client:
        yield World(
            db,
            store,
            client,
            acme,
            globex,
            _token(db, "Acme", Role.OWNER),
            _token(db, "Acme", Role.ADMIN),
            _token(db, "Globex", Role.OWNER),
            secret,
            acme_receipts,
        )
