"""Receipts for the dashboard's tests, written through the real ingest path."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from models.protocol import ImageRef, ReceiptMessage
from models.receipt import DateField, MoneyField, OcrLine, Receipt, ReceiptFields, TextField
from server.accounts import service as accounts
from server.accounts.roles import Role
from server.images.base import sha256_hex
from server.images.local import LocalImageStore
from tests.server.conftest import Db, ingest
from tests.server.helpers import image_topic, jpeg_bytes, receipt_topic

PASSWORD = "correct horse battery"


def read_receipt(
    merchant: str,
    total: str,
    date: dt.date,
    *,
    needs_review: bool = False,
    reasons: tuple[str, ...] = (),
    image: bytes | None = None,
    extra_line: str = "THANK YOU",
) -> ReceiptMessage:
    """A receipt message as a scanner sends it: fields pointing at OCR lines with boxes."""
    lines = [
        OcrLine(id=0, text=merchant.upper(), box=((10, 10), (190, 10), (190, 30), (10, 30))),
        OcrLine(id=1, text=f"TOTAL {total}", box=((10, 200), (190, 200), (190, 220), (10, 220))),
        OcrLine(id=2, text=extra_line, box=((10, 260), (190, 260), (190, 280), (10, 280))),
    ]
    fields = ReceiptFields(
        merchant=TextField(value=merchant, confidence=0.93, lines=[0]),
        total=MoneyField(value=Decimal(total), confidence=0.42 if needs_review else 0.9, lines=[1]),
        date=DateField(value=date, confidence=0.88),
        currency=TextField(value="EUR", confidence=0.7),
    )
    ref = (
        ImageRef(sha256=sha256_hex(image), content_type="image/jpeg", size_bytes=len(image))
        if image
        else None
    )
    return ReceiptMessage(
        receipt_id=uuid.uuid4(),
        captured_at=dt.datetime.combine(date, dt.time(12, 0), dt.UTC),
        source="test.jpg",
        image=ref,
        receipt=Receipt(
            fields=fields,
            lines=lines,
            needs_review=needs_review,
            review_reasons=list(reasons),
            ocr_engine="test",
            model_versions={"ocr": "test-1"},
            image_size=(200, 300),
        ),
    )


def ingest_receipts(
    db: Db, store: LocalImageStore, device_id: str, messages: list[ReceiptMessage]
) -> None:
    batch = [(receipt_topic(device_id), m.to_json()) for m in messages]
    result = ingest(db, store, batch)
    assert not result.refused, result.refused
    assert result.receipts == len(messages)


def add_image(
    db: Db, store: LocalImageStore, device_id: str, message: ReceiptMessage, data: bytes
) -> None:
    ingest(db, store, [(image_topic(device_id, message.receipt_id), data)])


def add_user(db: Db, org: str, email: str, role: Role = Role.OWNER) -> uuid.UUID:
    with db.sessions.begin() as session:
        return accounts.create_user_in(session, org, email, PASSWORD, role).id


def standard_receipts() -> list[ReceiptMessage]:
    return [
        read_receipt("Corner Shop", "12.50", dt.date(2024, 5, 17), extra_line="MILK 1.20"),
        read_receipt("Bakery Bloom", "4.80", dt.date(2024, 5, 20)),
        read_receipt(
            "Fuel Station",
            "61.00",
            dt.date(2024, 6, 2),
            needs_review=True,
            reasons=("total does not match the sum of the items",),
        ),
    ]


__all__ = ["PASSWORD", "add_image", "add_user", "ingest_receipts", "jpeg_bytes", "read_receipt"]
