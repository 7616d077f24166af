"""What the receipts API returns."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from server.accounts.models import ReceiptCorrection
from server.receipts.repository import ReceiptListRow, ReceiptRecord


class ReceiptSummary(BaseModel):
    id: uuid.UUID = Field(description="The receipt id the scanner chose.")
    device_id: str | None = Field(description="The scanner; null for an uploaded photo.")
    source: str = Field(description="How it came in: scanner or upload.")
    duplicate_of: uuid.UUID | None = Field(
        description="The earlier receipt this one repeats; left out of analytics and exports."
    )
    captured_at: dt.datetime
    received_at: dt.datetime
    merchant: str | None
    date: dt.date | None = Field(description="The date printed on the receipt, if read.")
    total: Decimal | None
    currency: str | None
    needs_review: bool
    image_url: str | None = Field(description="Where to fetch the image; null until it arrives.")
    held_reason: str | None = Field(
        default=None,
        description="`monthly_quota`: stored but held over the plan's monthly quota (left out "
        "of analytics and exports until released); null: not held.",
    )

    @classmethod
    def of(cls, rec: ReceiptRecord) -> ReceiptSummary:
        return cls(**_summary_values(rec))

    @classmethod
    def of_row(cls, row: ReceiptListRow) -> ReceiptSummary:
        """From a list row: the same fields as `of` gives for the whole receipt."""
        return cls(
            id=row.id,
            device_id=row.device_id,
            source=row.source,
            duplicate_of=row.duplicate_of,
            captured_at=row.captured_at,
            received_at=row.received_at,
            merchant=row.merchant,
            date=row.receipt_date,
            total=row.total,
            currency=row.currency,
            needs_review=row.needs_review,
            image_url=image_url(row.id) if row.has_image else None,
            held_reason=row.held_reason,
        )


class CorrectionView(BaseModel):
    field: str
    old_value: str | None
    new_value: str | None
    corrected_at: dt.datetime


class ReceiptDetail(ReceiptSummary):
    image_sha256: str | None
    message: dict[str, Any] = Field(description="The receipt message as the scanner sent it.")
    corrections: list[CorrectionView] = Field(
        default_factory=list,
        description="Fields people corrected, oldest first (the message stays as read).",
    )

    @classmethod
    def of(cls, rec: ReceiptRecord, corrections: Sequence[ReceiptCorrection] = ()) -> ReceiptDetail:
        image_sha = rec.image.sha256 if rec.image else rec.receipt.image_sha256
        return cls(
            **_summary_values(rec),
            image_sha256=image_sha,
            message=rec.receipt.document,
            corrections=[
                CorrectionView(
                    field=c.field,
                    old_value=c.old_value,
                    new_value=c.new_value,
                    corrected_at=c.created_at,
                )
                for c in corrections
            ],
        )


class ReceiptPage(BaseModel):
    items: list[ReceiptSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


def image_url(receipt_id: uuid.UUID) -> str:
    return f"/api/v1/receipts/{receipt_id}/image"


def _summary_values(rec: ReceiptRecord) -> dict[str, Any]:
    r = rec.receipt
    return {
        "id": r.id,
        "device_id": rec.device_id,
        "source": r.source,
        "duplicate_of": r.duplicate_of,
        "captured_at": r.captured_at,
        "received_at": r.received_at,
        "merchant": r.merchant,
        "date": r.receipt_date,
        "total": r.total,
        "currency": r.currency,
        "needs_review": r.needs_review,
        "image_url": image_url(r.id) if rec.image else None,
        "held_reason": r.held_reason,
    }
