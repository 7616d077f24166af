"""Receipt queries: cursor encoding and paging over the organisation-scoped repository."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid

from server.api.errors import ApiError
from server.images.base import ImageNotFoundError, ImageStore
from server.receipts.repository import ReceiptFilter, ReceiptRecord, ReceiptRepository
from server.receipts.schemas import ReceiptDetail, ReceiptPage, ReceiptSummary


def encode_cursor(captured_at: dt.datetime, receipt_id: uuid.UUID) -> str:
    raw = json.dumps([captured_at.isoformat(), str(receipt_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        captured, rid = json.loads(raw)
        at = dt.datetime.fromisoformat(captured)
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at, uuid.UUID(rid)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this API gave out; start from page one"
        ) from exc


def list_receipts(
    repo: ReceiptRepository, filters: ReceiptFilter, cursor: str | None, limit: int
) -> ReceiptPage:
    after = decode_cursor(cursor) if cursor else None
    rows = repo.rows(filters, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    next_cursor = encode_cursor(last.captured_at, last.id) if more and last else None
    return ReceiptPage(items=[ReceiptSummary.of_row(r) for r in page], next_cursor=next_cursor)


def _require(repo: ReceiptRepository, receipt_id: uuid.UUID) -> ReceiptRecord:
    rec = repo.get(receipt_id)
    if rec is None:
        raise ApiError(404, "receipt_not_found", f"no receipt {receipt_id} in your organisation")
    return rec


def get_receipt(repo: ReceiptRepository, receipt_id: uuid.UUID) -> ReceiptDetail:
    return ReceiptDetail.of(_require(repo, receipt_id), repo.corrections(receipt_id))


def get_image(
    repo: ReceiptRepository, store: ImageStore, receipt_id: uuid.UUID
) -> tuple[bytes, str]:
    """The image bytes and content type of a receipt of the organisation."""
    rec = _require(repo, receipt_id)
    if rec.image is None:
        raise ApiError(
            404,
            "image_not_found",
            f"receipt {receipt_id} has no image yet; the scanner may still send it",
        )
    try:
        return store.get(rec.image.sha256), rec.image.content_type
    except ImageNotFoundError as exc:
        raise ApiError(
            500, "image_missing", "the image is recorded but missing from the image store"
        ) from exc
