"""Builders of real protocol payloads and images for the server's tests."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Sequence
from decimal import Decimal

from PIL import Image

from models.protocol import ImageRef, ReceiptMessage, device_topic
from models.receipt import DateField, MoneyField, Receipt, ReceiptFields, TaxLine, TextField
from server.images.base import sha256_hex


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (40, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def receipt_message(
    *,
    receipt_id: uuid.UUID | None = None,
    merchant: str | None = "Corner Shop",
    total: str | None = "12.50",
    date: dt.date | None = dt.date(2024, 5, 17),
    captured_at: dt.datetime | None = None,
    image: bytes | None = None,
    category: str | None = None,
    taxes: Sequence[tuple[str | None, str | None, str]] = (),
) -> ReceiptMessage:
    """A receipt message; `taxes` are (label, rate in percent, amount) as printed."""
    fields = ReceiptFields(
        merchant=TextField(value=merchant, confidence=0.9, lines=[0]) if merchant else None,
        total=MoneyField(value=Decimal(total), confidence=0.8) if total else None,
        date=DateField(value=date, confidence=0.9) if date else None,
        currency=TextField(value="EUR", confidence=0.7),
        category=TextField(value=category, confidence=0.6) if category else None,
        taxes=[
            TaxLine(label=label, rate=Decimal(rate) if rate else None, amount=Decimal(amount))
            for label, rate, amount in taxes
        ],
    )
    ref = (
        ImageRef(sha256=sha256_hex(image), content_type="image/jpeg", size_bytes=len(image))
        if image
        else None
    )
    return ReceiptMessage(
        receipt_id=receipt_id or uuid.uuid4(),
        captured_at=captured_at or dt.datetime.now(dt.UTC),
        source="test.jpg",
        image=ref,
        receipt=Receipt(fields=fields, ocr_engine="test"),
    )


def receipt_topic(device_id: str) -> str:
    return device_topic(device_id, "receipt")


def image_topic(device_id: str, receipt_id: uuid.UUID) -> str:
    return device_topic(device_id, f"image/{receipt_id}")
