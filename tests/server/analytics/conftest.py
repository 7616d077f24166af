"""An app on a migrated database (SQLite and PostgreSQL) with two organisations' receipts,
written through the real ingest path, with categories and taxes as the extraction puts them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.protocol import ReceiptMessage
from server.api.app import create_app
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.dashboard.conftest import csrf
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.helpers import receipt_message, receipt_topic


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 30), dt.UTC)


def acme_receipts() -> list[tuple[str, ReceiptMessage]]:
    """(device, message): May 12.50 + 0.10 + 0.20 = 12.80; June 61.00 + 3.33 (+ one unread)."""
    may17, may18, may31 = dt.date(2024, 5, 17), dt.date(2024, 5, 18), dt.date(2024, 5, 31)
    return [
        ("scanner-1", receipt_message(
            merchant="Corner Shop", total="12.50", date=may17, captured_at=_at(may17),
            category="Groceries", taxes=[("VAT", "20", "2.08")],
        )),
        ("scanner-1", receipt_message(
            merchant="Corner Shop", total="0.10", date=may18, captured_at=_at(may18),
            category="Groceries", taxes=[("VAT", "20", "0.02")],
        )),
        ("scanner-2", receipt_message(
            merchant="Corner Shop", total="0.20", date=may31, captured_at=_at(may31),
            category="Groceries", taxes=[("VAT", "5", "0.01")],
        )),
        ("scanner-2", receipt_message(
            merchant="Fuel Station", total="61.00", date=dt.date(2024, 6, 2),
            captured_at=_at(dt.date(2024, 6, 2)), category="Fuel",
            taxes=[("VAT", "20", "10.17"), (None, None, "0.03")],
        )),
        # no printed date: counts on its capture date; no merchant, no category
        ("scanner-1", receipt_message(
            merchant=None, total="3.33", date=None, captured_at=_at(dt.date(2024, 6, 15)),
        )),
        # no total read: counted, adds nothing
        ("scanner-1", receipt_message(
            merchant="Bakery", total=None, date=dt.date(2024, 6, 3),
            captured_at=_at(dt.date(2024, 6, 3)),
        )),
    ]  # fmt: skip


@dataclass
class AnalyticsSite:
    db: Db
    client: TestClient
    acme: Tenant
    globex: Tenant
    messages: list[tuple[str, ReceiptMessage]]

    def api(self, path: str, tenant: Tenant | None = None) -> dict[str, Any]:
        token = (tenant or self.acme).token
        resp = self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def login(self, email: str) -> None:
        token = csrf(self.client.get("/app/login").text)
        resp = self.client.post(
            "/app/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert resp.status_code == 303, resp.text


@pytest.fixture
def analytics_site(db: Db, store: LocalImageStore) -> Iterator[AnalyticsSite]:
    acme = make_tenant(db, "Acme", "scanner-1", "scanner-2")
    globex = make_tenant(db, "Globex", "globex-1")
    messages = acme_receipts()
    messages.append(
        ("globex-1", receipt_message(
            merchant="Corner Shop", total="1000.00", date=dt.date(2024, 5, 17),
            captured_at=_at(dt.date(2024, 5, 17)), category="Groceries",
            taxes=[("VAT", "20", "166.67")],
        ))
    )  # fmt: skip
    result = ingest(db, store, [(receipt_topic(d), m.to_json()) for d, m in messages])
    assert not result.refused, result.refused
    assert result.receipts == len(messages)
    add_user(db, "Acme", "owner@acme.test")
    add_user(db, "Globex", "owner@globex.test")
    app = create_app(
        Settings(database_url=db.url, secret_key=SecretStr("s" * 40)),
        engine=db.engine,
        images=store,
    )
    with TestClient(app) as client:
        yield AnalyticsSite(db, client, acme, globex, messages)
