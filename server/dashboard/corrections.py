"""Corrections of receipt fields: parse what a person typed, keep the original, log the change.

The receipt message (`receipts.document`) is never changed: it stays what the scanner read. A
correction is a `receipt_corrections` row holding the `receipt-correction/1` record of
`models.evaluation.corrections`, the receipt's query columns (merchant, date, total, currency,
category: what lists, filters and analytics read) take the new value, so corrections win
everywhere without a query joining them, and one audit entry records who changed what.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from models.evaluation.corrections import Correction
from models.receipt import OcrLine
from server.accounts.audit import Actor, record_change
from server.accounts.models import ReceiptCorrection
from server.dashboard.repository import ReceiptBrowser
from server.db.base import utcnow
from server.db.models import Receipt
from server.receipts.derived import CATEGORY_MAX
from server.receipts.repository import ReceiptRecord
from server.webhooks.outbox import receipt_corrected

Kind = Literal["text", "money", "date", "time", "currency", "last4"]


@dataclass(frozen=True)
class EditableField:
    name: str
    label: str
    kind: Kind


#: The scalar fields of `models.receipt.ReceiptFields`, in the order the page shows them.
FIELDS: tuple[EditableField, ...] = (
    EditableField("merchant", "Merchant", "text"),
    EditableField("date", "Date", "date"),
    EditableField("total", "Total", "money"),
    EditableField("currency", "Currency", "currency"),
    EditableField("time", "Time", "time"),
    EditableField("subtotal", "Subtotal", "money"),
    EditableField("tip", "Tip", "money"),
    EditableField("discount", "Discount", "money"),
    EditableField("rounding", "Rounding", "money"),
    EditableField("tendered", "Tendered", "money"),
    EditableField("change", "Change", "money"),
    EditableField("category", "Category", "text"),
    EditableField("address", "Address", "text"),
    EditableField("phone", "Phone", "text"),
    EditableField("tax_id", "Tax id", "text"),
    EditableField("receipt_number", "Receipt number", "text"),
    EditableField("payment_method", "Payment method", "text"),
    EditableField("card_brand", "Card brand", "text"),
    EditableField("card_last4", "Card last 4", "last4"),
)
BY_NAME = {f.name: f for f in FIELDS}
#: The fields the review queue asks for first.
REVIEW_FIELDS = ("merchant", "date", "total", "currency")


class CorrectionError(ValueError):
    """What a person typed can't be a value of the field; `errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _money(text: str) -> str:
    try:
        amount = Decimal(text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount; write it like 12.50") from None
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 14:
        raise ValueError(f"{text!r} is not a usable amount")
    return str(amount)


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def _time(text: str) -> str:
    try:
        return dt.time.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a time; write it as HH:MM") from None


def _currency(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{3}", text):
        raise ValueError(f"{text!r} is not a currency code; use three letters like EUR")
    return text.upper()


def _last4(text: str) -> str:
    if not re.fullmatch(r"\d{4}", text):
        raise ValueError("give exactly the last four digits of the card")
    return text


def _text(text: str) -> str:
    if len(text) > 500:
        raise ValueError("at most 500 characters")
    return text


_PARSERS: dict[Kind, Callable[[str], str]] = {
    "money": _money,
    "date": _date,
    "time": _time,
    "currency": _currency,
    "last4": _last4,
    "text": _text,
}


def parse_value(spec: EditableField, raw: str) -> str | None:
    """The canonical string of a typed value (None: "there is none"); raises ValueError."""
    text = raw.strip()
    return _PARSERS[spec.kind](text) if text else None


def original_values(document: Mapping[str, Any]) -> dict[str, str | None]:
    """Each editable field's value as the scanner read it (strings, as a person types them)."""
    fields = (document.get("receipt") or {}).get("fields") or {}
    out: dict[str, str | None] = {}
    for spec in FIELDS:
        entry = fields.get(spec.name)
        value = entry.get("value") if isinstance(entry, dict) else None
        out[spec.name] = None if value is None else str(value)
    return out


def confidences(document: Mapping[str, Any]) -> dict[str, float | None]:
    fields = (document.get("receipt") or {}).get("fields") or {}
    out: dict[str, float | None] = {}
    for spec in FIELDS:
        entry = fields.get(spec.name)
        conf = entry.get("confidence") if isinstance(entry, dict) else None
        out[spec.name] = float(conf) if isinstance(conf, int | float) else None
    return out


def current_values(
    document: Mapping[str, Any], corrections: Sequence[ReceiptCorrection]
) -> dict[str, str | None]:
    """The original values with the latest correction of each field applied."""
    values = original_values(document)
    for c in corrections:  # oldest first: the latest wins
        if c.field in values:
            values[c.field] = c.new_value
    return values


def _ocr_lines(document: Mapping[str, Any]) -> list[OcrLine]:
    lines: list[OcrLine] = []
    for raw in (document.get("receipt") or {}).get("lines") or []:
        try:
            lines.append(OcrLine.model_validate(raw))
        except ValidationError:
            continue  # a line the format can't carry is left out of the training record
    return lines


def _image_size(document: Mapping[str, Any]) -> tuple[int, int] | None:
    size = (document.get("receipt") or {}).get("image_size")
    if isinstance(size, list | tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    return None


def _apply_to_row(receipt: Receipt, name: str, value: str | None) -> None:
    """Keep the receipt's summary columns (what lists, filters and exports use) current."""
    if name == "merchant":
        receipt.merchant = value[:500] if value else None
    elif name == "date":
        receipt.receipt_date = dt.date.fromisoformat(value) if value else None
        receipt.effective_date = receipt.receipt_date or receipt.captured_at.date()
    elif name == "total":
        receipt.total = Decimal(value) if value is not None else None
    elif name == "currency":
        receipt.currency = value[:8] if value else None
    elif name == "category":  # analytics group on the column (server.receipts.derived)
        receipt.category = value[:CATEGORY_MAX] if value else None


@dataclass(frozen=True)
class EditOutcome:
    changed: dict[str, tuple[str | None, str | None]]
    approved: bool


def correct_receipt(
    session: Session,
    browser: ReceiptBrowser,
    record: ReceiptRecord,
    typed: Mapping[str, str],
    actor: Actor,
    *,
    approve: bool = False,
) -> EditOutcome:
    """Apply the typed values of `record` (locked by the caller); all or nothing.

    `typed` maps field names to what was typed; fields absent from it are left alone.
    Raises `CorrectionError` naming every bad field (nothing is written then).
    """
    receipt = record.receipt
    current = current_values(receipt.document, browser.corrections(receipt.id))
    errors: dict[str, str] = {}
    changes: dict[str, tuple[str | None, str | None]] = {}
    for name, raw in typed.items():
        spec = BY_NAME.get(name)
        if spec is None:
            errors[name] = "not a field of a receipt"
            continue
        try:
            value = parse_value(spec, raw)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if value != current[name]:
            changes[name] = (current[name], value)
    if errors:
        raise CorrectionError(errors)
    approved = approve and receipt.needs_review
    if not changes and not approved:
        return EditOutcome({}, approved=False)

    now = utcnow()
    lines, size = _ocr_lines(receipt.document), _image_size(receipt.document)
    versions = (receipt.document.get("receipt") or {}).get("model_versions") or {}
    for name, (old, new) in changes.items():
        line = Correction(
            receipt_id=str(receipt.id),
            field=name,
            old_value=old,
            new_value=new,
            ocr_lines=lines,
            image_size=size,
            model_versions={str(k): str(v) for k, v in versions.items()},
            corrected_at=now,
            corrected_by=str(actor.user_id) if actor.user_id else None,
        ).to_json()
        browser.add_correction(
            ReceiptCorrection(
                organization_id=browser.organization_id,
                receipt_id=receipt.id,
                field=name,
                old_value=old,
                new_value=new,
                corrected_by=actor.user_id,
                record=json.loads(line),
                created_at=now,
            )
        )
        _apply_to_row(receipt, name, new)
    before: dict[str, Any] = {k: old for k, (old, _new) in changes.items()}
    after: dict[str, Any] = {k: new for k, (_old, new) in changes.items()}
    if approved:
        before["needs_review"], after["needs_review"] = True, False
        receipt.needs_review = False
    session.flush()
    record_change(
        session,
        actor=actor,
        organization_id=browser.organization_id,
        action="receipt.approved" if approved and not changes else "receipt.corrected",
        entity_type="receipt",
        entity_id=receipt.id,
        before=before,
        after=after,
        at=now,
    )
    receipt_corrected(session, receipt, changes, approved=approved, corrected_by=actor.user_id)
    return EditOutcome(changes, approved)


def export_corrections(browser: ReceiptBrowser, folder: Path) -> Path:
    """Write the organisation's corrections as `receipt-correction/1` JSON Lines into `folder`
    (what `receipts eval fields --data FOLDER` reads); returns the file written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"corrections-{browser.organization_id}.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for c in browser.all_corrections():
            handle.write(json.dumps(c.record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
