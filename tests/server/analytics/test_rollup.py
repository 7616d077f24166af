"""The monthly spend rollup (PostgreSQL) stays exactly the receipts' own aggregate through every
way receipts change: admission (with quota holds), corrections, duplicate flags and their
undoing, releases, deletion of a receipt, of an original (its duplicate's `duplicate_of` is set
null by the database), of a device and of an organisation; spend per month and category read
from it equals the sum over the receipts for whole, partial and open date ranges."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from sqlalchemy import delete, select

from server.accounts.audit import Actor
from server.analytics.repository import AnalyticsRepository, DateRange, whole_months
from server.analytics.rollup import drift, rebuild
from server.dashboard.corrections import correct_receipt
from server.dashboard.repository import ReceiptBrowser
from server.db.models import Device, Organization, Receipt
from server.images.local import LocalImageStore
from server.plans import quota
from server.plans.catalog import Plan
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.helpers import receipt_message, receipt_topic

D = dt.date
RANGES = [
    DateRange(),
    DateRange(D(2024, 1, 1), D(2024, 3, 31)),  # whole months only
    DateRange(D(2024, 1, 15), D(2024, 3, 10)),  # partial months at both ends
    DateRange(D(2024, 2, 3), D(2024, 2, 20)),  # inside one month
    DateRange(D(2024, 1, 31), D(2024, 2, 1)),  # two partial months, no whole one
    DateRange(D(2024, 2, 1), None),
    DateRange(None, D(2024, 2, 29)),  # a leap February's last day: whole
    DateRange(None, D(2024, 2, 28)),
    DateRange(D(2024, 3, 1), D(2024, 3, 1)),
]


@pytest.fixture
def pg(db: Db) -> Db:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the rollup is PostgreSQL's; SQLite sums the receipts")
    return db


def send(db: Db, store: LocalImageStore, device: str, n: int, rnd: random.Random) -> None:
    """`n` receipts over January to April 2024: categories, totals and printed dates vary, some
    missing (no category, no total, no date: counted on the capture date)."""
    msgs = []
    for _ in range(n):
        captured = dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC) + dt.timedelta(
            minutes=rnd.randrange(0, 120 * 24 * 60)
        )
        printed = captured.date() - dt.timedelta(days=rnd.choice((0, 0, 1, 2)))
        msgs.append(
            receipt_message(
                merchant=rnd.choice(("Corner Shop", "Fuel Stop", None)),
                total=rnd.choice((None, "0.10", "12.50", "99.99", "3.3333", "1234.5")),
                date=rnd.choice((printed, printed, None)),
                captured_at=captured,
                category=rnd.choice((None, "Groceries", "Fuel", "Office")),
            )
        )
    result = ingest(db, store, [(receipt_topic(device), m.to_json()) for m in msgs])
    assert not result.refused


def org_ids(db: Db) -> list[uuid.UUID]:
    with db.sessions() as s:
        return list(s.scalars(select(Organization.id)))


def check(db: Db) -> None:
    """The rollup equals the receipts' aggregate, and analytics read from it equal analytics
    summed from the receipts, for every organisation, group and range."""
    with db.engine.connect() as conn:
        assert drift(conn) == []
    with db.sessions() as s:
        for org in org_ids(db):
            repo = AnalyticsRepository(s, org)
            for group in ("month", "category"):
                for rng in RANGES:
                    for limit in (None, 2):
                        fast = repo.spend(group, rng, limit)
                        assert fast == repo.spend(group, rng, limit, rollup=False), (group, rng)


def counted(db: Db) -> list[Receipt]:
    with db.sessions() as s:
        q = select(Receipt).where(Receipt.held_at.is_(None)).order_by(Receipt.captured_at)
        return list(s.scalars(q))


def test_the_rollup_equals_the_receipts_through_every_change(pg: Db, store: LocalImageStore):
    db = pg
    rnd = random.Random(11)
    make_tenant(db, "Acme", "till-1", "till-2")  # Starter: 50 a month, the rest held
    make_tenant(db, "Globex", "globex-1", plan="pro")
    send(db, store, "till-1", 40, rnd)
    send(db, store, "till-2", 40, rnd)
    send(db, store, "globex-1", 60, rnd)
    with db.sessions() as s:
        assert s.scalar(select(Receipt.id).where(Receipt.held_at.is_not(None))) is not None
    check(db)

    # corrections of what analytics groups and sums on (a held receipt's too)
    with db.sessions() as s:
        targets = list(s.scalars(select(Receipt.id).order_by(Receipt.captured_at).limit(12)))
        acme = s.scalar(select(Organization.id).where(Organization.name == "Acme"))
    assert acme is not None
    typed_values = [
        {"category": "Travel"},
        {"category": ""},
        {"total": "7.77"},
        {"total": ""},
        {"date": "2023-12-31"},
        {"currency": "GBP"},
        {"merchant": "Only the merchant"},  # analytics unchanged: the trigger does nothing
    ]
    for receipt_id, typed in zip(targets, typed_values, strict=False):
        with db.sessions.begin() as s:
            org = s.get(Receipt, receipt_id)
            assert org is not None
            browser = ReceiptBrowser(s, org.organization_id)
            record = browser.for_update(receipt_id)
            assert record is not None
            correct_receipt(s, browser, record, typed, Actor.system("test"))
    check(db)

    # duplicates flagged, one flag undone
    original, *copies = counted(db)[:4]
    with db.sessions.begin() as s:
        for c in copies:
            row = s.get(Receipt, c.id)
            assert row is not None
            row.duplicate_of = original.id
    with db.sessions.begin() as s:
        row = s.get(Receipt, copies[0].id)
        assert row is not None
        row.duplicate_of = None
    check(db)

    # holds released by an upgrade
    with db.sessions.begin() as s:
        assert quota.change_plan(s, acme, Plan("pro"), Actor.system("test")).released > 0
    check(db)

    # deletions: a receipt; the original (its duplicates count again); a device; an organisation
    with db.sessions.begin() as s:
        s.execute(delete(Receipt).where(Receipt.id == counted(db)[-1].id))
    with db.sessions.begin() as s:
        s.execute(delete(Receipt).where(Receipt.id == original.id))
    check(db)
    with db.sessions.begin() as s:
        s.execute(delete(Device).where(Device.device_id == "till-2"))
    check(db)
    with db.sessions.begin() as s:
        s.execute(delete(Organization).where(Organization.name == "Globex"))
    check(db)

    # a rebuild (after a load that bypassed the trigger) gives the same rows
    with db.engine.begin() as conn:
        rebuild(conn)
    check(db)


def test_whole_months_of_a_range():
    assert whole_months(DateRange()) == (None, None)
    assert whole_months(DateRange(D(2024, 1, 1), D(2024, 3, 31))) == (D(2024, 1, 1), D(2024, 4, 1))
    assert whole_months(DateRange(D(2024, 1, 2), D(2024, 3, 30))) == (D(2024, 2, 1), D(2024, 3, 1))
    assert whole_months(DateRange(D(2024, 2, 3), D(2024, 2, 20))) == (D(2024, 3, 1), D(2024, 2, 1))
    assert whole_months(DateRange(None, D(2024, 2, 29))) == (None, D(2024, 3, 1))
    assert whole_months(DateRange(D(2024, 12, 5), None)) == (D(2025, 1, 1), None)
