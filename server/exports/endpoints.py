"""HTTP routes of exports; tenancy comes from the `Receipts` and `AccountCodes` dependencies.

Each export validates its filters and reads the organisation's account codes before the first
byte goes out, then streams: a bad filter is a 422 with the API's error shape, never a torn file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from server.api.deps import DbSession, Images, Organization, Receipts
from server.api.errors import ApiError
from server.exports import service
from server.exports.repository import (
    DEFAULT_ACCOUNT_CODE,
    AccountCodeRepository,
    normalize_category,
)
from server.exports.schemas import AccountCodeMapping, AccountCodesIn, AccountCodesOut
from server.receipts.repository import ReceiptFilter

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


def account_codes_repository(
    session: DbSession, organization: Organization
) -> AccountCodeRepository:
    return AccountCodeRepository(session, organization)


AccountCodes = Annotated[AccountCodeRepository, Depends(account_codes_repository)]


def export_filter(  # noqa: PLR0917 (FastAPI query parameters)
    date_from: Annotated[dt.date | None, Query(description="Receipt date on or after.")] = None,
    date_to: Annotated[dt.date | None, Query(description="Receipt date on or before.")] = None,
    merchant: Annotated[
        str | None, Query(max_length=500, description="Merchant name contains (any case).")
    ] = None,
    device: Annotated[str | None, Query(max_length=64, description="Only this scanner's.")] = None,
    duplicates: Annotated[
        bool, Query(description="Also export receipts flagged as duplicates of another.")
    ] = False,
    held: Annotated[
        bool, Query(description="Also export receipts held over the plan's monthly quota.")
    ] = False,
) -> ReceiptFilter:
    """The receipts list's filters; a receipt without a printed date counts on its capture date."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ApiError(422, "invalid_request", "date_from must be on or before date_to")
    return ReceiptFilter(
        date_from,
        date_to,
        merchant,
        device,
        include_duplicates=duplicates,
        include_held=held,
    )


Filters = Annotated[ReceiptFilter, Depends(export_filter)]
Lines = Annotated[
    Literal["items"] | None,
    Query(description="`items`: one row per line item instead of one per receipt."),
]

_CSV = "text/csv; charset=utf-8"


def _download(body: Iterator[bytes], media_type: str, name: str) -> StreamingResponse:
    """An attachment named `<stem>-<UTC date>.<ext>` for `name` = `<stem>.<ext>`."""
    stem, ext = name.rsplit(".", 1)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{stem}-{stamp}.{ext}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/receipts.csv", response_class=StreamingResponse)
def export_receipts_csv(
    repo: Receipts, codes: AccountCodes, filters: Filters, lines: Lines = None
) -> StreamingResponse:
    """One row per receipt (or per line item with `lines=items`), newest capture first."""
    kind = "items" if lines == "items" else "receipts"
    body = service.stream_csv(repo, filters, codes.mapping(), kind)
    return _download(body, _CSV, "receipts.csv" if kind == "receipts" else "receipt-items.csv")


@router.get("/receipts.json", response_class=StreamingResponse)
def export_receipts_json(
    repo: Receipts, codes: AccountCodes, filters: Filters, lines: Lines = None
) -> StreamingResponse:
    """A JSON array: receipts with items and taxes nested, or flat line-item rows."""
    body = service.stream_json(repo, filters, codes.mapping(), items=lines == "items")
    return _download(body, "application/json", "receipts.json")


@router.get("/xero-bills.csv", response_class=StreamingResponse)
def export_xero_bills(repo: Receipts, codes: AccountCodes, filters: Filters) -> StreamingResponse:
    """Xero's bill import template; one bill per receipt, a line per item. Amounts tax inclusive."""
    body = service.stream_csv(repo, filters, codes.mapping(), "xero")
    return _download(body, _CSV, "xero-bills.csv")


@router.get("/quickbooks-expenses.csv", response_class=StreamingResponse)
def export_quickbooks(repo: Receipts, codes: AccountCodes, filters: Filters) -> StreamingResponse:
    """QuickBooks Online bank-upload CSV (Date, Description, Amount) with payee, account, tax."""
    body = service.stream_csv(repo, filters, codes.mapping(), "quickbooks")
    return _download(body, _CSV, "quickbooks-expenses.csv")


@router.get("/receipts.zip", response_class=StreamingResponse)
def export_receipts_zip(
    repo: Receipts, store: Images, codes: AccountCodes, filters: Filters
) -> StreamingResponse:
    """The images, `receipts.csv` and `manifest.json` of the filtered receipts."""
    echo = {
        "date_from": filters.date_from.isoformat() if filters.date_from else None,
        "date_to": filters.date_to.isoformat() if filters.date_to else None,
        "merchant": filters.merchant,
        "device": filters.device_id,
        "duplicates": "included" if filters.include_duplicates else "left out",
        "held": filters.include_held,
    }
    body = service.stream_zip(repo, store, filters, codes.mapping(), echo)
    return _download(body, "application/zip", "receipts.zip")


@router.get("/account-codes", response_model=AccountCodesOut)
def get_account_codes(codes: AccountCodes) -> AccountCodesOut:
    """The organisation's category -> account-code mapping and the defaults for the rest."""
    return _codes_out(codes)


@router.put("/account-codes", response_model=AccountCodesOut)
def put_account_codes(codes: AccountCodes, body: AccountCodesIn) -> AccountCodesOut:
    """Replace the whole mapping; categories match case-insensitively."""
    rows: list[tuple[str, str, str | None]] = []
    if body.default_account_code or body.default_tax_type:
        rows.append(("", body.default_account_code or DEFAULT_ACCOUNT_CODE, body.default_tax_type))
    rows += [(normalize_category(m.category), m.account_code, m.tax_type) for m in body.mappings]
    codes.replace(rows)
    return _codes_out(codes)


def _codes_out(codes: AccountCodeRepository) -> AccountCodesOut:
    mapping = codes.mapping()
    return AccountCodesOut(
        default_account_code=mapping.default.account_code,
        default_tax_type=mapping.default.tax_type,
        mappings=[
            AccountCodeMapping(
                category=r.category, account_code=r.account_code, tax_type=r.tax_type
            )
            for r in codes.rows()
            if r.category
        ],
    )
