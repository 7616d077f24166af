"""The query columns of receipts (category, tax_total, receipt_taxes) on SQLite and PostgreSQL:
written when a receipt is admitted (scanner or upload), overwritten by a correction (corrections
win), backfilled by migration 0010; analytics from them equal the computation from the JSON
message they replaced; merchant search by substring; keyset paging."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select

from models.pipeline import ReadResult
from models.receipt import Receipt as ReadReceipt
from models.receipt import ReceiptFields, TaxLine, TextField
from server.accounts.audit import Actor
from server.accounts.models import ReceiptCorrection
from server.analytics.repository import AnalyticsRepository, DateRange
from server.dashboard.corrections import correct_receipt
from server.dashboard.repository import ReceiptBrowser
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.db.models import Receipt, ReceiptTax
from server.images.local import LocalImageStore
from server.jobs.queue import ClaimedJob
from server.organizations.repository import OrganizationRepository
from server.receipts import service
from server.receipts.derived import plain, query_columns, tax_rows
from server.receipts.repository import ReceiptFilter, ReceiptRepository
from server.uploads.models import Upload
from server.uploads.reader import ReadUploadHandler
from server.uploads.service import READ_UPLOAD
from server.uploads.settings import UploadSettings
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import jpeg_bytes, receipt_message, receipt_topic


def org_id(db: Db, name: str = "Acme") -> uuid.UUID:
    with db.sessions() as s:
        org = OrganizationRepository(s).get_by_name(name)
        assert org is not None
        return org.id


def stored(db: Db, receipt_id: uuid.UUID) -> tuple[str | None, Decimal | None, list[Any]]:
    """(category, tax_total, [(position, label, rate, amount)]) as stored."""
    with db.sessions() as s:
        r = s.get(Receipt, receipt_id)
        assert r is not None
        taxes = s.scalars(
            select(ReceiptTax).where(ReceiptTax.receipt_id == receipt_id).order_by("position")
        ).all()
        return r.category, r.tax_total, [(t.position, t.label, t.rate, t.amount) for t in taxes]


def correct(db: Db, receipt_id: uuid.UUID, typed: dict[str, str]) -> None:
    with db.sessions.begin() as s:
        browser = ReceiptBrowser(s, org_id(db))
        record = browser.for_update(receipt_id)
        assert record is not None
        correct_receipt(s, browser, record, typed, Actor.system("test"))


def by_category(db: Db) -> list[tuple[str | None, Decimal, int]]:
    with db.sessions() as s:
        rows = AnalyticsRepository(s, org_id(db)).spend("category", DateRange())
    return [(r.key, r.total, r.receipts) for r in rows]


def test_a_scanned_receipt_gets_its_query_columns(db: Db, store: LocalImageStore, tenant: Tenant):
    taxed = receipt_message(
        category="Groceries",
        taxes=[("VAT", "20.00", "2.08"), ("VAT", "5", "0.01"), (None, None, "0.03")],
    )
    plain_one = receipt_message(merchant="Kiosk")
    result = ingest(
        db, store, [(receipt_topic(tenant.device_id), m.to_json()) for m in (taxed, plain_one)]
    )
    assert result.receipts == 2, result.refused

    category, tax_total, taxes = stored(db, taxed.receipt_id)
    assert category == "Groceries"
    assert tax_total == Decimal("2.12")
    assert taxes == [
        (0, "VAT", Decimal(20), Decimal("2.08")),  # 20.00 is kept as the rate 20
        (1, "VAT", Decimal(5), Decimal("0.01")),
        (2, None, None, Decimal("0.03")),
    ]
    assert stored(db, plain_one.receipt_id) == (None, None, [])


class FixedPipeline:
    """Stands in for the read pipeline: every photo reads as `receipt`."""

    def __init__(self, receipt: ReadReceipt) -> None:
        self.receipt = receipt

    def read(self, image: np.ndarray) -> ReadResult:
        return ReadResult(self.receipt, image)


def test_an_uploaded_receipt_gets_its_query_columns(db: Db, store: LocalImageStore, tenant: Tenant):
    fields = ReceiptFields(
        merchant=TextField(value="Fuel Station", confidence=0.9),
        category=TextField(value="Fuel", confidence=0.8),
        taxes=[TaxLine(label="GST", rate=Decimal("6.0"), amount=Decimal("3.40"))],
    )
    photo = jpeg_bytes(7)
    org = org_id(db)
    with db.sessions.begin() as s:
        upload = Upload(
            organization_id=org,
            filename="photo.jpg",
            sha256=store.put(photo),
            content_type="image/jpeg",
            size_bytes=len(photo),
        )
        s.add(upload)
        s.flush()
        upload_id = upload.id
    handler = ReadUploadHandler(
        db.sessions,
        store,
        UploadSettings(),
        pipeline=FixedPipeline(ReadReceipt(fields=fields, ocr_engine="test")),  # type: ignore[arg-type]
    )
    job = ClaimedJob(uuid.uuid4(), READ_UPLOAD, {"upload_id": str(upload_id)}, org, 1, 3, "t")
    write = handler.perform(job)
    with db.sessions.begin() as s:
        write(s)
    assert stored(db, upload_id) == ("Fuel", Decimal("3.40"), [(0, "GST", 6, Decimal("3.40"))])


def test_a_corrected_category_wins_and_clearing_it_counts_as_none(
    db: Db, store: LocalImageStore, tenant: Tenant
):
    topic = receipt_topic(tenant.device_id)
    a = receipt_message(total="10.00", category="Groceries", taxes=[("VAT", "20", "1.67")])
    b = receipt_message(total="5.00", category="Groceries")
    ingest(db, store, [(topic, a.to_json()), (topic, b.to_json())])
    assert by_category(db) == [("Groceries", Decimal("15.00"), 2)]

    correct(db, a.receipt_id, {"category": "Travel", "merchant": "Airline"})
    assert stored(db, a.receipt_id)[0] == "Travel"
    assert stored(db, a.receipt_id)[1] == Decimal("1.67")  # taxes are not a corrected field
    assert by_category(db) == [("Travel", Decimal("10.00"), 1), ("Groceries", Decimal("5.00"), 1)]

    correct(db, b.receipt_id, {"category": ""})  # a person says there is none
    assert stored(db, b.receipt_id)[0] is None
    assert by_category(db) == [("Travel", Decimal("10.00"), 1), (None, Decimal("5.00"), 1)]


# --------------------------------------------------------------------------- same as before


def reference(
    documents: dict[uuid.UUID, dict[str, Any]],
    counted: dict[uuid.UUID, tuple[dt.date, str | None, Decimal | None]],
    corrected: dict[uuid.UUID, str | None],
) -> tuple[dict[tuple[str | None, str | None], Decimal], dict[tuple[Any, ...], Decimal]]:
    """Spend per category and taxes per (month, currency, label, rate), computed from the JSON
    messages and the corrections as analytics did before the query columns."""
    spend: dict[tuple[str | None, str | None], Decimal] = defaultdict(Decimal)
    taxes: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for rid, (day, currency, total) in counted.items():
        fields = documents[rid]["receipt"]["fields"]
        read = (fields.get("category") or {}).get("value")
        category = corrected.get(rid, read)
        spend[(category, currency)] += total or Decimal(0)
        for line in fields.get("taxes") or []:
            rate = Decimal(line["rate"]) if line.get("rate") is not None else None
            key = (f"{day:%Y-%m}", currency, line.get("label"), rate)
            taxes[key] += Decimal(line["amount"])
    return dict(spend), dict(taxes)


def test_analytics_equal_the_computation_from_the_messages(db: Db, store: LocalImageStore):
    """60 receipts on a Starter plan (50 a month: 10 held, left out), random categories and
    taxes, some categories corrected: sums per category and taxes per month and rate are
    what the JSON messages and corrections give."""
    tenant = make_tenant(db, "Acme", "scanner-1")
    rnd = random.Random(6)
    messages = []
    for i in range(60):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=rnd.randrange(120))
        taxes = [
            (rnd.choice(["VAT", "GST", None]), rnd.choice(["20", "20.00", "5.5", None]),
             f"{rnd.randrange(1, 5000) / 100:.2f}")
            for _ in range(rnd.randrange(3))
        ]  # fmt: skip
        messages.append(
            receipt_message(
                total=f"{rnd.randrange(1, 100000) / 100:.2f}",
                date=day,
                captured_at=dt.datetime(2024, 6, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
                category=rnd.choice(["Groceries", "Fuel", "Office", None]),
                taxes=taxes,
            )
        )
    ingest(db, store, [(receipt_topic(tenant.device_id), m.to_json()) for m in messages])
    corrected: dict[uuid.UUID, str | None] = {}
    for m in rnd.sample(messages, 8):
        new = rnd.choice(["Travel", "Fuel", ""])
        correct(db, m.receipt_id, {"category": new})
        corrected[m.receipt_id] = new or None

    with db.sessions() as s:
        rows = s.execute(
            select(Receipt.id, Receipt.document, Receipt.effective_date, Receipt.currency,
                   Receipt.total, Receipt.held_at)
        ).all()  # fmt: skip
        documents = {r.id: r.document for r in rows}
        counted = {r.id: (r.effective_date, r.currency, r.total) for r in rows if r.held_at is None}
        assert len(counted) == 50  # the quota held the rest
        repo = AnalyticsRepository(s, org_id(db))
        spend = {(r.key, r.currency): r.total for r in repo.spend("category", DateRange())}
        tax_read = repo.taxes(DateRange())
        taxes = {(t.period, t.currency, t.label, t.rate): t.amount for t in tax_read.rows}
        per_currency = {r.currency: r.total for r in repo.tax_totals(DateRange())}

    want_spend, want_taxes = reference(documents, counted, corrected)
    assert spend == want_spend
    assert taxes == want_taxes
    assert not tax_read.truncated
    assert {k: plain(v) for k, v in per_currency.items()} == {
        "EUR": plain(sum(want_taxes.values(), Decimal(0)))
    }


# --------------------------------------------------------------------------- migration 0010


def test_migration_backfills_the_query_columns(db_url: str):
    """Receipts stored at 0009 get the columns the admission path would have written, with the
    latest category correction winning; junk tax lines are skipped, not fatal."""
    migrate(db_url, "0009")
    engine = create_db_engine(db_url)
    db = Db(db_url, engine, session_factory(engine))
    try:
        tenant = make_tenant(db, "Acme", "scanner-1", plan="enterprise")
        org = org_id(db)
        documents: dict[uuid.UUID, dict[str, Any]] = {}
        for m in (
            receipt_message(
                category="Groceries", taxes=[("VAT", "20.00", "2.08"), (None, None, "1")]
            ),
            receipt_message(category="Fuel"),
            receipt_message(category=None, taxes=[("GST", "5.50", "0.55")]),
        ):  # fmt: skip
            documents[m.receipt_id] = json.loads(m.to_json())
        junk = json.loads(receipt_message(category="Office").to_json())
        junk["receipt"]["fields"]["taxes"] = [
            {"label": "", "rate": "x", "amount": "1.5"},
            {"label": "VAT", "amount": None},
            "junk",
            {"label": "GST", "rate": 6, "amount": 0.6},
        ]
        junk_id = uuid.uuid4()
        documents[junk_id] = junk
        not_a_list = json.loads(receipt_message(category="Books").to_json())
        not_a_list["receipt"]["fields"]["taxes"] = {"amount": "9"}
        not_a_list_id = uuid.uuid4()
        documents[not_a_list_id] = not_a_list
        ids = list(documents)
        now = dt.datetime.now(dt.UTC)
        with db.sessions.begin() as s:
            for rid, doc in documents.items():
                s.execute(
                    Receipt.__table__.insert().values(
                        id=rid, organization_id=org, captured_at=now, received_at=now,
                        effective_date=now.date(), document=doc,
                    )
                )  # fmt: skip
            for at, (rid, value) in enumerate(
                [(ids[0], "Travel"), (ids[0], "Office"), (ids[1], None)]
            ):
                s.add(
                    ReceiptCorrection(
                        organization_id=org, receipt_id=rid, field="category", old_value=None,
                        new_value=value, record={},
                        created_at=now + dt.timedelta(seconds=at),
                    )
                )  # fmt: skip

        migrate(db_url)

        winners = {ids[0]: "Office", ids[1]: None}
        for rid, doc in documents.items():
            want = query_columns(doc)
            if rid in winners:
                want["category"] = winners[rid]
            want_taxes = [
                (t["position"], t["label"], t["rate"], t["amount"]) for t in tax_rows(rid, org, doc)
            ]
            assert stored(db, rid) == (want["category"], want["tax_total"], want_taxes), rid
        assert stored(db, junk_id)[2] == [
            (0, None, None, Decimal("1.5")),
            (3, "GST", Decimal(6), Decimal("0.6")),
        ]
        assert stored(db, not_a_list_id) == ("Books", None, [])
        assert tenant.device_id == "scanner-1"
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- search and paging


def test_merchant_search_finds_a_substring_in_any_case(
    db: Db, store: LocalImageStore, tenant: Tenant
):
    topic = receipt_topic(tenant.device_id)
    names = ["Corner Shop", "CORNER BAKERY", "Fuel Station", "50% Off Outlet", "Big_Box", None]
    messages = [receipt_message(merchant=n) for n in names]
    ingest(db, store, [(topic, m.to_json()) for m in messages])
    other = make_tenant(db, "Globex", "globex-1")
    ingest(
        db,
        store,
        [(receipt_topic(other.device_id), receipt_message(merchant="Corner X").to_json())],
    )

    def search(text: str) -> set[str | None]:
        with db.sessions() as s:
            repo = ReceiptRepository(s, org_id(db))
            rows = repo.list(ReceiptFilter(merchant=text), after=None, limit=50)
            return {r.receipt.merchant for r in rows}

    assert search("orner") == {"Corner Shop", "CORNER BAKERY"}  # not Globex's
    assert search("corner s") == {"Corner Shop"}
    assert search("STATION") == {"Fuel Station"}
    assert search("0%") == {"50% Off Outlet"}  # wildcards are literal
    assert search("%") == {"50% Off Outlet"}
    assert search("g_b") == {"Big_Box"}
    assert search("_") == {"Big_Box"}
    assert search("nowhere") == set()


def test_keyset_pages_return_every_receipt_once_in_order(
    db: Db, store: LocalImageStore, tenant: Tenant
):
    topic = receipt_topic(tenant.device_id)
    same = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)  # ties: ordered by id
    messages = [receipt_message(captured_at=same) for _ in range(5)]
    messages += [receipt_message(captured_at=same + dt.timedelta(hours=h)) for h in (-1, 1, 2)]
    ingest(db, store, [(topic, m.to_json()) for m in messages])
    seen: list[tuple[dt.datetime, uuid.UUID]] = []
    cursor = None
    with db.sessions() as s:
        repo = ReceiptRepository(s, org_id(db))
        while True:
            page = service.list_receipts(repo, ReceiptFilter(), cursor, 3)
            seen += [(i.captured_at, i.id) for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert len(seen) == 8 and len(set(seen)) == 8
    expected = sorted(seen, key=lambda k: (k[0], str(k[1])), reverse=True)
    assert [at for at, _ in seen] == [at for at, _ in expected]
