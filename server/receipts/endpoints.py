"""HTTP routes of receipts; tenancy comes from the `Receipts` dependency, never from here."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from server.api.deps import Images, Receipts
from server.api.etag import conditional_json
from server.receipts import service
from server.receipts.repository import ReceiptFilter
from server.receipts.schemas import ReceiptDetail, ReceiptPage

router = APIRouter(prefix="/api/v1/receipts", tags=["receipts"])


@router.get("", response_model=ReceiptPage)
def list_receipts(
    *,
    request: Request,
    repo: Receipts,
    date_from: Annotated[dt.date | None, Query(description="Receipt date on or after.")] = None,
    date_to: Annotated[dt.date | None, Query(description="Receipt date on or before.")] = None,
    merchant: Annotated[str | None, Query(description="Merchant name contains (any case).")] = None,
    device: Annotated[str | None, Query(description="Only this scanner's receipts.")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Receipts, newest capture first; one without a printed date counts on its capture date.
    Held receipts (over a monthly quota) are listed with `held`. The page has an ETag:
    send it back in `If-None-Match` for a 304 while nothing on it changed."""
    filters = ReceiptFilter(date_from, date_to, merchant, device)
    return conditional_json(request, service.list_receipts(repo, filters, cursor, limit))


@router.get("/{receipt_id}", response_model=ReceiptDetail)
def get_receipt(request: Request, repo: Receipts, receipt_id: uuid.UUID) -> Response:
    """One receipt, with its corrections; with an ETag (`If-None-Match` gives 304)."""
    return conditional_json(request, service.get_receipt(repo, receipt_id))


@router.get("/{receipt_id}/image", response_class=Response)
def get_receipt_image(repo: Receipts, store: Images, receipt_id: uuid.UUID) -> Response:
    data, content_type = service.get_image(repo, store, receipt_id)
    return Response(
        content=data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"}
    )
