"""Export rows and the streamed files built from them.

Every file is produced by a generator that reads the organisation-scoped repository one page at a
time (`iter_receipts`) and yields bytes as it goes, so an export of any size holds one page.
Money is written as exact decimals (never floats) with at least two places, dates as ISO 8601.
Summary columns (merchant, date, total, currency) carry a person's corrections; the rest comes
from the receipt message the scanner sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from server.exports.repository import AccountCodeMap, iter_receipts
from server.images.base import ImageNotFoundError, ImageStore
from server.receipts.repository import ReceiptFilter, ReceiptRecord, ReceiptRepository

Value = str | Decimal | int | bool | dt.date | None
Row = dict[str, Value]

RECEIPT_COLUMNS = [
    "receipt_id",
    "device_id",
    "captured_at",
    "received_at",
    "date",
    "effective_date",
    "merchant",
    "category",
    "account_code",
    "currency",
    "subtotal",
    "tax",
    "tip",
    "discount",
    "total",
    "payment_method",
    "card_last4",
    "receipt_number",
    "tax_id",
    "needs_review",
    "image_sha256",
    "image_url",
]
ITEM_COLUMNS = ["item_index", "item_description", "item_quantity", "item_unit_price", "item_amount"]

#: Xero's bill import template (Business > Bills to pay > Import), its headers verbatim; the
#: asterisk marks what Xero requires. Amounts are as printed: choose "Tax inclusive" on import.
XERO_COLUMNS = [
    "*ContactName",
    "EmailAddress",
    "POAddressLine1",
    "POAddressLine2",
    "POAddressLine3",
    "POAddressLine4",
    "POCity",
    "PORegion",
    "POPostalCode",
    "POCountry",
    "*InvoiceNumber",
    "*InvoiceDate",
    "*DueDate",
    "InventoryItemCode",
    "Description",
    "*Quantity",
    "*UnitAmount",
    "*AccountCode",
    "*TaxType",
    "TaxAmount",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
    "Currency",
]

#: QuickBooks Online's bank-transaction upload takes Date, Description and Amount (money spent
#: is negative) and ignores the rest; the extra columns carry what a bookkeeper categorises with.
QUICKBOOKS_COLUMNS = [
    "Date",
    "Description",
    "Amount",
    "Payee",
    "Account",
    "Tax Code",
    "Tax Amount",
    "Currency",
    "Ref No",
    "Memo",
]

_CENT = Decimal("0.01")


# --------------------------------------------------------------------------- values


def money(value: Decimal | None) -> str:
    """An exact amount with at least two decimal places: 12.5 -> '12.50', 1.2345 -> '1.2345'."""
    if value is None:
        return ""
    if value == value.quantize(_CENT):
        return str(value.quantize(_CENT))
    return str(value.normalize())


def _decimal(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        d = Decimal(str(raw))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _fields(rec: ReceiptRecord) -> dict[str, Any]:
    receipt = rec.receipt.document.get("receipt")
    fields = receipt.get("fields") if isinstance(receipt, dict) else None
    return fields if isinstance(fields, dict) else {}


def _value(fields: dict[str, Any], name: str) -> Any:
    f = fields.get(name)
    return f.get("value") if isinstance(f, dict) else None


def _text(fields: dict[str, Any], name: str) -> str | None:
    v = _value(fields, name)
    return str(v) if v is not None else None


def _items(fields: dict[str, Any]) -> list[dict[str, Any]]:
    items = fields.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _taxes(fields: dict[str, Any]) -> list[dict[str, Any]]:
    taxes = fields.get("taxes")
    return [t for t in taxes if isinstance(t, dict)] if isinstance(taxes, list) else []


def _tax_total(fields: dict[str, Any]) -> Decimal | None:
    amounts = [_decimal(t.get("amount")) for t in _taxes(fields)]
    known = [a for a in amounts if a is not None]
    return sum(known, Decimal(0)) if known else None


def _reference(rec: ReceiptRecord) -> str:
    """The bill/expense reference: the printed receipt number, else the receipt id's prefix."""
    return _text(_fields(rec), "receipt_number") or f"RM-{rec.receipt.id.hex[:8].upper()}"


# --------------------------------------------------------------------------- rows


def receipt_row(rec: ReceiptRecord, codes: AccountCodeMap) -> Row:
    r, fields = rec.receipt, _fields(rec)
    category = _text(fields, "category")
    return {
        "receipt_id": str(r.id),
        "device_id": rec.device_id,
        "captured_at": r.captured_at.isoformat(),
        "received_at": r.received_at.isoformat(),
        "date": r.receipt_date,
        "effective_date": r.effective_date,
        "merchant": r.merchant,
        "category": category,
        "account_code": codes.booking(category).account_code,
        "currency": r.currency,
        "subtotal": _decimal(_value(fields, "subtotal")),
        "tax": _tax_total(fields),
        "tip": _decimal(_value(fields, "tip")),
        "discount": _decimal(_value(fields, "discount")),
        "total": r.total,
        "payment_method": _text(fields, "payment_method"),
        "card_last4": _text(fields, "card_last4"),
        "receipt_number": _text(fields, "receipt_number"),
        "tax_id": _text(fields, "tax_id"),
        "needs_review": r.needs_review,
        "image_sha256": rec.image.sha256 if rec.image else r.image_sha256,
        "image_url": f"/api/v1/receipts/{r.id}/image" if rec.image else None,
    }


def item_rows(rec: ReceiptRecord, codes: AccountCodeMap) -> Iterator[Row]:
    """One row per line item; a receipt with none still gets one row, its item columns empty."""
    base = receipt_row(rec, codes)
    items = _items(_fields(rec))
    if not items:
        yield base | dict.fromkeys(ITEM_COLUMNS)
    for n, item in enumerate(items, start=1):
        yield base | {
            "item_index": n,
            "item_description": str(item.get("description", "")),
            "item_quantity": _decimal(item.get("quantity")),
            "item_unit_price": _decimal(item.get("unit_price")),
            "item_amount": _decimal(item.get("amount")),
        }


def _json_receipt(rec: ReceiptRecord, codes: AccountCodeMap) -> dict[str, Any]:
    fields = _fields(rec)
    items = [
        {
            "description": str(i.get("description", "")),
            "quantity": _json_value(_decimal(i.get("quantity"))),
            "unit_price": _json_value(_decimal(i.get("unit_price"))),
            "amount": _json_value(_decimal(i.get("amount"))),
        }
        for i in _items(fields)
    ]
    taxes = [
        {
            "label": t.get("label"),
            "rate": _json_value(_decimal(t.get("rate"))),
            "amount": _json_value(_decimal(t.get("amount"))),
        }
        for t in _taxes(fields)
    ]
    row: dict[str, Any] = {k: _json_value(v) for k, v in receipt_row(rec, codes).items()}
    return row | {"items": items, "taxes": taxes}


def xero_rows(rec: ReceiptRecord, codes: AccountCodeMap) -> Iterator[Row]:
    """The lines of one Xero bill: its items (plus any difference to the total), else the total."""
    r, fields = rec.receipt, _fields(rec)
    category = _text(fields, "category")
    booking = codes.booking(category)
    merchant = r.merchant or "Unknown merchant"
    base: Row = dict.fromkeys(XERO_COLUMNS) | {
        "*ContactName": merchant,
        "POAddressLine1": _text(fields, "address"),
        "*InvoiceNumber": _reference(rec),
        "*InvoiceDate": r.effective_date,
        "*DueDate": r.effective_date,
        "*AccountCode": booking.account_code,
        "*TaxType": booking.tax_type,
        "Currency": r.currency,
    }
    lines: list[tuple[str, Decimal, Decimal | None]] = []
    items = _items(fields)
    amounts = [_decimal(i.get("amount")) for i in items]
    if items and all(a is not None for a in amounts):
        for item, amount in zip(items, amounts, strict=True):
            assert amount is not None
            qty, unit = _decimal(item.get("quantity")), _decimal(item.get("unit_price"))
            if qty and unit is not None and qty * unit == amount:
                lines.append((str(item.get("description", "")), qty, unit))
            else:
                lines.append((str(item.get("description", "")), Decimal(1), amount))
        rest = None if r.total is None else r.total - sum(a for a in amounts if a is not None)
        if rest:
            lines.append(
                ("Difference to the receipt total (tax, discount, rounding)", Decimal(1), rest)
            )
    else:
        what = f"{merchant} receipt" + (f" ({category})" if category else "")
        if r.total is None:
            what += " - total not read, check the receipt"
        lines.append((what, Decimal(1), r.total))
    for description, qty, unit in lines:
        yield base | {"Description": description, "*Quantity": qty, "*UnitAmount": unit}


def quickbooks_row(rec: ReceiptRecord, codes: AccountCodeMap) -> Row:
    r, fields = rec.receipt, _fields(rec)
    category = _text(fields, "category")
    booking = codes.booking(category)
    merchant = r.merchant or "Unknown merchant"
    tax = _tax_total(fields)
    return {
        "Date": r.effective_date,
        "Description": f"{merchant}" + (f" - {category}" if category else ""),
        "Amount": None if r.total is None else -r.total,
        "Payee": merchant,
        "Account": booking.account_code,
        "Tax Code": booking.tax_type,
        "Tax Amount": tax,
        "Currency": r.currency,
        "Ref No": _reference(rec),
        "Memo": f"receipt {r.id}"
        + (f", paid by {p}" if (p := _text(fields, "payment_method")) else ""),
    }


# --------------------------------------------------------------------------- files


def _csv_value(v: Value) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return money(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def _json_value(v: Value) -> Any:
    if isinstance(v, Decimal):
        return money(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _csv_text(columns: Sequence[str], rows: Iterable[Row], header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header:
        w.writerow(columns)
    for row in rows:
        w.writerow([_csv_value(row.get(c)) for c in columns])
    return buf.getvalue()


def _page_rows(kind: str, page: Sequence[ReceiptRecord], codes: AccountCodeMap) -> Iterator[Row]:
    for rec in page:
        if kind == "items":
            yield from item_rows(rec, codes)
        elif kind == "xero":
            yield from xero_rows(rec, codes)
        elif kind == "quickbooks":
            yield quickbooks_row(rec, codes)
        else:
            yield receipt_row(rec, codes)


COLUMNS = {
    "receipts": RECEIPT_COLUMNS,
    "items": RECEIPT_COLUMNS + ITEM_COLUMNS,
    "xero": XERO_COLUMNS,
    "quickbooks": QUICKBOOKS_COLUMNS,
}


def stream_csv(
    repo: ReceiptRepository, filters: ReceiptFilter, codes: AccountCodeMap, kind: str
) -> Iterator[bytes]:
    """A CSV of `kind` (receipts, items, xero, quickbooks): the header, then a chunk per page."""
    yield from csv_of_pages(iter_receipts(repo, filters), codes, kind)


def csv_of_pages(
    pages: Iterable[Sequence[ReceiptRecord]], codes: AccountCodeMap, kind: str
) -> Iterator[bytes]:
    """The CSV of `kind` over pages of receipts read elsewhere (the dashboard's own filters)."""
    columns = COLUMNS[kind]
    yield _csv_text(columns, [], header=True).encode()
    for page in pages:
        yield _csv_text(columns, _page_rows(kind, page, codes), header=False).encode()


def stream_json(
    repo: ReceiptRepository, filters: ReceiptFilter, codes: AccountCodeMap, items: bool
) -> Iterator[bytes]:
    """A JSON array: receipts with their items and taxes nested, or flat line-item rows."""
    yield b"["
    first = True
    for page in iter_receipts(repo, filters):
        parts: list[str] = []
        for rec in page:
            objs: Iterable[Any] = (
                ({k: _json_value(v) for k, v in row.items()} for row in item_rows(rec, codes))
                if items
                else [_json_receipt(rec, codes)]
            )
            parts.extend(json.dumps(o, ensure_ascii=False) for o in objs)
        if parts:
            yield (("" if first else ",") + "\n" + ",\n".join(parts)).encode()
            first = False
    yield b"\n]\n"


class ZipSink(io.RawIOBase):
    """An unseekable file that zipfile writes into; a streaming generator takes what piled up
    (used by every ZIP this server streams: exports and an organisation's data export)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._chunks.append(data)
        return len(data)

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_SPOOL = 1 << 20
_MANIFEST_KEYS = (
    "receipt_id",
    "device_id",
    "date",
    "effective_date",
    "merchant",
    "category",
    "account_code",
    "currency",
    "total",
    "image_sha256",
)


def _copy_into(zf: zipfile.ZipFile, name: str, spool: IO[bytes], sink: ZipSink) -> Iterator[bytes]:
    spool.seek(0)
    with zf.open(zipfile.ZipInfo(name, date_time=_now_tuple()), "w") as entry:
        while chunk := spool.read(1 << 16):
            entry.write(chunk)
            yield sink.take()


def _now_tuple() -> tuple[int, int, int, int, int, int]:
    now = dt.datetime.now(dt.UTC)
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)


def stream_zip(
    repo: ReceiptRepository,
    store: ImageStore,
    filters: ReceiptFilter,
    codes: AccountCodeMap,
    filter_echo: dict[str, str | bool | None],
) -> Iterator[bytes]:
    """A ZIP: `images/<receipt id>.<ext>`, `receipts.csv` and `manifest.json`.

    Images go in as each page is read; the CSV and the manifest are spooled to temporary files
    (on disk past 1 MiB) and added last, so memory stays at one page and one image.
    """
    sink = ZipSink()
    with (
        tempfile.SpooledTemporaryFile(_SPOOL) as csv_spool,
        tempfile.SpooledTemporaryFile(_SPOOL) as manifest_spool,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        csv_spool.write(_csv_text(RECEIPT_COLUMNS, [], header=True).encode())
        manifest_spool.write(b'{"format": "receipt-manager-export/1", ')
        manifest_spool.write(f'"generated_at": "{dt.datetime.now(dt.UTC).isoformat()}", '.encode())
        manifest_spool.write(f'"filters": {json.dumps(filter_echo)}, "receipts": ['.encode())
        count = 0
        for page in iter_receipts(repo, filters):
            rows = [receipt_row(rec, codes) for rec in page]
            csv_spool.write(_csv_text(RECEIPT_COLUMNS, rows, header=False).encode())
            for rec, row in zip(page, rows, strict=True):
                image_name: str | None = None
                missing = False
                if rec.image is not None:
                    try:
                        data = store.get(rec.image.sha256)
                    except ImageNotFoundError:
                        missing = True
                    else:
                        ext = IMAGE_EXTENSIONS.get(rec.image.content_type, "bin")
                        image_name = f"images/{rec.receipt.id}.{ext}"
                        info = zipfile.ZipInfo(image_name, date_time=_now_tuple())
                        info.compress_type = zipfile.ZIP_STORED  # images are compressed already
                        zf.writestr(info, data)
                entry = {k: _json_value(row[k]) for k in _MANIFEST_KEYS}
                entry |= {"image": image_name, "image_missing": missing}
                manifest_spool.write(
                    (("," if count else "") + "\n" + json.dumps(entry, ensure_ascii=False)).encode()
                )
                count += 1
            yield sink.take()
        manifest_spool.write(f'\n], "count": {count}}}\n'.encode())
        yield from _copy_into(zf, "receipts.csv", csv_spool, sink)
        yield from _copy_into(zf, "manifest.json", manifest_spool, sink)
    yield sink.take()
