"""Duplicate receipts through the real ingest path (receipt and image messages, in either order)
on both databases; the rule's edges; the dashboard's audited "not a duplicate"."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from models.protocol import ReceiptMessage
from server.accounts.models import AuditEntry
from server.analytics.repository import AnalyticsRepository, DateRange
from server.api.app import create_app
from server.db.models import Receipt
from server.images.local import LocalImageStore
from server.receipts.duplicates import (
    MAX_DISTANCE,
    dhash,
    flag_duplicates,
    hamming,
    image_dhash,
    normalise_merchant,
)
from server.settings import Settings
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.helpers import image_topic, receipt_message, receipt_topic

DAY = dt.date(2025, 3, 14)


def photo(seed: int, quality: int = 90) -> bytes:
    """A receipt-sized JPEG with structure of its own (blurred noise), `seed` picks which."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (24, 16), dtype=np.uint8)
    big = cv2.resize(small, (320, 480), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def message(merchant: str = "Corner Shop", total: str = "12.50", **kw: object) -> ReceiptMessage:
    return receipt_message(merchant=merchant, total=total, date=DAY, **kw)  # type: ignore[arg-type]


def send(
    db: Db,
    store: LocalImageStore,
    t: Tenant,
    m: ReceiptMessage | None,
    img: bytes | None,
    receipt_id: uuid.UUID | None = None,
) -> None:
    batch = []
    if m is not None:
        batch.append((receipt_topic(t.device_id), m.to_json()))
    if img is not None:
        batch.append((image_topic(t.device_id, receipt_id or m.receipt_id), img))  # type: ignore[union-attr]
    result = ingest(db, store, batch)
    assert not result.refused, result.refused


def duplicate_of(db: Db, receipt_id: uuid.UUID) -> uuid.UUID | None:
    with db.sessions() as s:
        return s.scalar(select(Receipt.duplicate_of).where(Receipt.id == receipt_id))


@pytest.fixture
def acme(db: Db) -> Tenant:
    return make_tenant(db, "Acme", "scanner-1")


def test_hash_sees_the_same_picture_through_recompression_not_another():
    a, a_again, b = photo(1, 95), photo(1, 40), photo(2)
    ha, ha2, hb = image_dhash(a), image_dhash(a_again), image_dhash(b)
    assert ha is not None and ha2 is not None and hb is not None
    assert hamming(ha, ha2) <= 2
    assert hamming(ha, hb) > MAX_DISTANCE
    assert -(1 << 63) <= ha < 1 << 63  # fits a signed BIGINT
    assert image_dhash(b"not an image") is None
    flat = np.full((40, 30, 3), 200, np.uint8)
    assert dhash(flat) == 0
    assert normalise_merchant(" Café-Bar, Ltd. ") == normalise_merchant("CAFE BAR LTD")


def test_a_second_scan_is_flagged_in_either_order_and_counted_once(
    db: Db, store: LocalImageStore, acme: Tenant
):
    first = message()
    send(db, store, acme, first, photo(1, 95))
    # the second scan's receipt arrives before its image: flagged when the image comes
    second = message(merchant="CORNER SHOP.")
    send(db, store, acme, second, None)
    assert duplicate_of(db, second.receipt_id) is None  # no image yet, no flag
    send(db, store, acme, None, photo(1, 60), receipt_id=second.receipt_id)
    assert duplicate_of(db, second.receipt_id) == first.receipt_id
    # a third scan whose image came first: flagged when its receipt is admitted
    third = message()
    send(db, store, acme, None, photo(1, 80), receipt_id=third.receipt_id)
    send(db, store, acme, third, None)
    assert duplicate_of(db, third.receipt_id) == first.receipt_id
    assert duplicate_of(db, first.receipt_id) is None

    with db.sessions() as s:
        org = s.scalar(select(Receipt.organization_id).where(Receipt.id == first.receipt_id))
        assert org is not None
        count, rows = AnalyticsRepository(s, org).totals(DateRange())
    assert count == 1
    assert [str(r.total) for r in rows] == ["12.50"]


def test_an_earlier_receipt_whose_image_comes_late_flags_the_later_one(
    db: Db, store: LocalImageStore, acme: Tenant
):
    early, late = message(), message()
    send(db, store, acme, early, None)
    send(db, store, acme, late, photo(3, 90))
    assert duplicate_of(db, late.receipt_id) is None
    send(db, store, acme, None, photo(3, 70), receipt_id=early.receipt_id)
    assert duplicate_of(db, late.receipt_id) == early.receipt_id
    assert duplicate_of(db, early.receipt_id) is None


def test_look_alikes_that_are_not_the_same_receipt_are_not_flagged(
    db: Db, store: LocalImageStore, acme: Tenant
):
    original = message()
    send(db, store, acme, original, photo(1))
    others = {
        "same total, other merchant": (message(merchant="Bakery Bloom"), photo(1)),
        "same fields, other picture": (message(), photo(2)),
        "same fields, no picture": (message(), None),
        "other total": (message(total="12.51"), photo(1)),
    }
    for m, img in others.values():
        send(db, store, acme, m, img)
    for name, (m, _) in others.items():
        assert duplicate_of(db, m.receipt_id) is None, name
    # another organisation's identical scan is never a duplicate of this one's
    other_org = make_tenant(db, "Other", "scanner-9")
    theirs = message()
    send(db, store, other_org, theirs, photo(1))
    assert duplicate_of(db, theirs.receipt_id) is None


def test_not_a_duplicate_clears_the_flag_for_good_and_is_audited(
    db: Db, store: LocalImageStore, acme: Tenant
):
    first, second = message(), message()
    send(db, store, acme, first, photo(4))
    send(db, store, acme, second, photo(4, 50))
    assert duplicate_of(db, second.receipt_id) == first.receipt_id
    add_user(db, "Acme", "owner@acme.test")
    settings = Settings(database_url=db.url, secret_key=SecretStr("k" * 40))
    with TestClient(create_app(settings, engine=db.engine, images=store)) as client:
        login = client.get("/app/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        client.post(
            "/app/login",
            data={"email": "owner@acme.test", "password": PASSWORD, "csrf_token": token},
        )
        page = client.get(f"/app/receipts/{second.receipt_id}").text
        assert "Duplicate of" in page and f"/app/receipts/{first.receipt_id}" in page
        listing = client.get("/app/receipts").text
        assert listing.count(">duplicate</a>") == 1
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = client.post(
            f"/app/receipts/{second.receipt_id}/not-duplicate",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert resp.status_code == 303
        assert "Duplicate of" not in client.get(f"/app/receipts/{second.receipt_id}").text
    assert duplicate_of(db, second.receipt_id) is None
    with db.sessions.begin() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "receipt.not_duplicate")
        ).one()
        assert entry.actor == "owner@acme.test"
        assert entry.before == {"duplicate_of": str(first.receipt_id)}
        assert flag_duplicates(s, [second.receipt_id]) == {}  # never flagged again
    assert duplicate_of(db, second.receipt_id) is None
