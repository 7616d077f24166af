"""SROIE-style scoring: company and address as folded strings, date as date, total as decimal."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from models.extraction.amounts import clean_amount_text, find_amounts
from models.extraction.dates import parse_date_string
from models.receipt import ReceiptFields

FIELDS = ("company", "date", "address", "total")


def fold_text(text: str) -> str:
    """Case, spacing and punctuation folded: only letters and digits, upper case."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text.upper() if c.isalnum() and not unicodedata.combining(c))


def key_total(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    found = find_amounts(clean_amount_text(text), 0)
    if found:
        return abs(found[-1].value)
    try:
        return Decimal(re.sub(r"[^\d.]", "", text))
    except InvalidOperation:
        return None


def key_date(text: str) -> dt.date | None:
    """A key's date; SROIE receipts are Malaysian, so ambiguous dates are day-first."""
    return parse_date_string(text, day_first=True) if text.strip() else None


@dataclass(slots=True)
class FieldResult:
    correct: bool
    confidence: float | None


@dataclass(slots=True)
class ReceiptScore:
    id: str
    fields: dict[str, FieldResult] = field(default_factory=dict)
    needs_review: bool = False

    @property
    def all_correct(self) -> bool:
        return all(r.correct for r in self.fields.values())


def score_receipt(
    sample_id: str, fields: ReceiptFields, key: dict[str, str], needs_review: bool
) -> ReceiptScore:
    """Compare the extracted fields with the answer key; an empty key wants an empty field.

    A field missing from the key is not scored (a correction names only the fields it fixed).
    """
    out = ReceiptScore(sample_id, needs_review=needs_review)
    pairs: dict[str, tuple[object | None, object | None, float | None]] = {}
    if "company" in key:
        pairs["company"] = (
            fold_text(fields.merchant.value) if fields.merchant else None,
            fold_text(key["company"]) or None,
            fields.merchant.confidence if fields.merchant else None,
        )
    if "address" in key:
        pairs["address"] = (
            fold_text(fields.address.value) if fields.address else None,
            fold_text(key["address"]) or None,
            fields.address.confidence if fields.address else None,
        )
    if "date" in key:
        pairs["date"] = (
            fields.date.value if fields.date else None,
            key_date(key["date"]),
            fields.date.confidence if fields.date else None,
        )
    if "total" in key:
        pairs["total"] = (
            fields.total.value if fields.total else None,
            key_total(key["total"]),
            fields.total.confidence if fields.total else None,
        )
    for name, (got, want, confidence) in pairs.items():
        out.fields[name] = FieldResult(correct=got == want, confidence=confidence)
    return out


@dataclass(slots=True)
class Report:
    n: int
    accuracy: dict[str, float]  # only the fields that were scored at least once
    counts: dict[str, int]
    mean: float
    deciles: list[tuple[float, float, int, float]]  # (low, high, count, accuracy)
    review_share: float
    review_wrong_share: float
    wrong_unflagged: int


def summarise(scores: list[ReceiptScore]) -> Report:
    """Per-field accuracy, their mean, accuracy per confidence decile, and review precision."""
    n = len(scores)
    counts = {f: sum(f in s.fields for s in scores) for f in FIELDS}
    accuracy = {
        f: sum(s.fields[f].correct for s in scores if f in s.fields) / counts[f]
        for f in FIELDS
        if counts[f]
    }
    bins: list[list[bool]] = [[] for _ in range(10)]
    for s in scores:
        for r in s.fields.values():
            conf = r.confidence if r.confidence is not None else 0.0
            bins[min(int(conf * 10), 9)].append(r.correct)
    deciles = [
        (k / 10, (k + 1) / 10, len(b), sum(b) / len(b) if b else float("nan"))
        for k, b in enumerate(bins)
    ]
    flagged = [s for s in scores if s.needs_review]
    return Report(
        n=n,
        accuracy=accuracy,
        counts=counts,
        mean=sum(accuracy.values()) / len(accuracy) if accuracy else 0.0,
        deciles=deciles,
        review_share=len(flagged) / n if n else 0.0,
        review_wrong_share=(
            sum(not s.all_correct for s in flagged) / len(flagged) if flagged else float("nan")
        ),
        wrong_unflagged=sum(not s.all_correct and not s.needs_review for s in scores),
    )
