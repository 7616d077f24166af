"""Monthly quotas through the real ingest path on both databases: over-quota receipts are stored
and held (nothing lost), left out of exports and analytics, released in capture order."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.protocol import ReceiptMessage
from server.accounts.audit import Actor
from server.accounts.models import AuditEntry
from server.db.models import Receipt
from server.images.local import LocalImageStore
from server.plans import quota
from server.plans.catalog import Plan
from server.plans.quota import QUOTA_HELD
from tests.server.api_keys.conftest import bearer, make_app_client, operator_token
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.helpers import receipt_message, receipt_topic

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def client(db: Db, store: LocalImageStore):
    with make_app_client(db, store) as c:
        yield c


def messages(n: int, start: int = 0) -> list[ReceiptMessage]:
    """`n` receipts captured a minute apart from T0 + `start` minutes."""
    return [
        receipt_message(merchant=f"Shop {i}", captured_at=T0 + dt.timedelta(minutes=i))
        for i in range(start, start + n)
    ]


def send(db: Db, store: LocalImageStore, device: str, msgs: list[ReceiptMessage]) -> None:
    result = ingest(db, store, [(receipt_topic(device), m.to_json()) for m in msgs])
    assert not result.refused and result.receipts == len(msgs)


def held_ids(db: Db) -> list[uuid.UUID]:
    with db.sessions() as s:
        q = select(Receipt.id).where(Receipt.held_at.is_not(None)).order_by(Receipt.captured_at)
        return list(s.scalars(q))


def stored(db: Db) -> int:
    with db.sessions() as s:
        return len(s.scalars(select(Receipt.id)).all())


def held_metric() -> float:
    return QUOTA_HELD.labels("starter")._value.get()


def export_ids(client: TestClient, token: str, **params: str) -> set[str]:
    r = client.get("/api/v1/exports/receipts.csv", headers=bearer(token), params=params)
    assert r.status_code == 200, r.text
    return {row["receipt_id"] for row in csv.DictReader(io.StringIO(r.text))}


def analysed(client: TestClient, token: str) -> int:
    """Receipts the analytics count (spend by month, all months)."""
    r = client.get("/api/v1/analytics/spend", params={"group": "month"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return sum(g["receipts"] for g in r.json()["groups"])


def test_receipts_over_the_quota_are_held_never_lost_and_released_on_upgrade(
    db: Db, store: LocalImageStore, client: TestClient
):
    make_tenant(db, "Acme", "till-1")  # Starter: 50 a month
    owner = operator_token(db, "Acme")
    metric_before = held_metric()
    batch = messages(53)
    # the batch arrives out of capture order: the earliest captures are admitted first
    send(db, store, "till-1", batch[::-1])
    assert stored(db) == 53
    assert held_ids(db) == [m.receipt_id for m in batch[50:]]
    more = messages(2, start=100)
    send(db, store, "till-1", more)
    assert stored(db) == 55
    assert held_ids(db) == [m.receipt_id for m in batch[50:] + more]
    assert held_metric() - metric_before == 5

    # the API lists them as held; exports and analytics leave them out by default
    items = client.get("/api/v1/receipts?limit=200", headers=bearer(owner)).json()["items"]
    assert len(items) == 55
    assert sum(i["held_reason"] == "monthly_quota" for i in items) == 5
    assert len(export_ids(client, owner)) == 50
    assert len(export_ids(client, owner, held="true")) == 55
    assert analysed(client, owner) == 50
    plan = client.get("/api/v1/organization/plan", headers=bearer(owner)).json()
    assert (plan["plan"], plan["used_this_month"], plan["held"]) == ("starter", 50, 5)

    # an upgrade releases them (in capture order), audited
    r = client.put("/api/v1/organization/plan", json={"plan": "pro"}, headers=bearer(owner))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["previous"], body["plan"], body["released"], body["held"]) == (
        "starter",
        "pro",
        5,
        0,
    )
    assert held_ids(db) == []
    assert len(export_ids(client, owner)) == 55
    assert analysed(client, owner) == 55
    with db.sessions() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "organization.plan_changed"))
        assert entry is not None and entry.after == {"plan": "pro"}


def test_a_new_month_releases_held_receipts_in_capture_order(db: Db, store: LocalImageStore):
    make_tenant(db, "Acme", "till-1")
    batch = messages(105)
    send(db, store, "till-1", batch[::-1])
    assert len(held_ids(db)) == 55
    now = dt.datetime.now(dt.UTC)
    with db.sessions.begin() as s:
        assert quota.release_due(s, now) == 0  # this month is full
    next_month = quota.next_month_start(now) + dt.timedelta(hours=1)
    with db.sessions.begin() as s:
        assert quota.release_due(s, next_month) == 50  # the new month's room
    assert held_ids(db) == [m.receipt_id for m in batch[100:]]  # the latest captures wait
    with db.sessions() as s:
        assert quota.usage(s, s.scalar(select(Receipt.organization_id)), next_month) == 50
    assert stored(db) == 105


def test_unlimited_plans_hold_nothing_and_messages_say_what_to_do(db: Db, store: LocalImageStore):
    make_tenant(db, "Big", "big-1", plan="business")
    send(db, store, "big-1", messages(60))
    assert held_ids(db) == []
    note = quota.held_message(Plan.STARTER, dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    assert note == (
        "Monthly limit of 50 receipts on the Starter plan reached; upgrade or wait until "
        "1 December to release"
    )
    assert "1 January" in quota.held_message(Plan.PRO, dt.datetime(2026, 12, 31, tzinfo=dt.UTC))


def test_plan_change_needs_a_known_plan(db: Db, client: TestClient):
    make_tenant(db, "Acme", "till-1")
    owner = operator_token(db, "Acme")
    r = client.put("/api/v1/organization/plan", json={"plan": "gold"}, headers=bearer(owner))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "starter" in r.json()["error"]["message"]


def test_a_held_receipt_is_announced_to_webhooks_when_released_not_before(
    db: Db, store: LocalImageStore
):
    from server.webhooks.models import WebhookEvent
    from tests.server.webhooks.conftest import register

    make_tenant(db, "Acme", "till-1")  # Starter: 50 a month
    register(db, "Acme", "http://127.0.0.1:9/hook", events=("receipt.created",))
    batch = messages(52)
    send(db, store, "till-1", batch)

    def announced() -> list[str]:
        with db.sessions() as s:
            bodies = s.scalars(
                select(WebhookEvent.body).where(WebhookEvent.type == "receipt.created")
            )
            return sorted(json.loads(b)["data"]["receipt"]["id"] for b in bodies)

    held = sorted(str(m.receipt_id) for m in batch[50:])
    assert len(announced()) == 50 and not set(held) & set(announced())
    with db.sessions.begin() as s:
        org = s.scalar(select(Receipt.organization_id))
        quota.change_plan(s, org, Plan.PRO, actor=Actor.system("test"))
    assert len(announced()) == 52 and set(held) <= set(announced())
