"""What the receipt pages show, computed from stored rows: filters from a query string, the
fields with confidence and corrections, the OCR line boxes for the SVG overlay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from server.accounts.models import ReceiptCorrection
from server.dashboard.corrections import FIELDS, confidences, current_values, original_values
from server.dashboard.repository import SORTS, BrowseFilter, Review

PER_PAGE = 25


@dataclass(frozen=True)
class ListQuery:
    filters: BrowseFilter
    sort: str
    page: int
    errors: list[str]


def _date(raw: str, label: str, errors: list[str]) -> dt.date | None:
    if not raw.strip():
        return None
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        errors.append(f"{label} {raw!r} is not a date (YYYY-MM-DD); it is not applied")
        return None


def _amount(raw: str, label: str, errors: list[str]) -> Decimal | None:
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip().replace(",", "."))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        errors.append(f"{label} {raw!r} is not an amount; it is not applied")
        return None
    return value


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The list's filters from its query string; a bad value is reported, not applied."""
    errors: list[str] = []
    review_raw = params.get("review", "any")
    review: Review = "yes" if review_raw == "yes" else "no" if review_raw == "no" else "any"
    filters = BrowseFilter(
        text=params.get("q", "").strip()[:200] or None,
        date_from=_date(params.get("from", ""), "From date", errors),
        date_to=_date(params.get("to", ""), "To date", errors),
        device_id=params.get("device", "").strip() or None,
        review=review,
        min_total=_amount(params.get("min", ""), "Minimum total", errors),
        max_total=_amount(params.get("max", ""), "Maximum total", errors),
    )
    sort = params.get("sort", "-captured")
    if sort not in SORTS:
        sort = "-captured"
    try:
        page = max(1, min(int(params.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    return ListQuery(filters, sort, page, errors)


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    value: str | None
    original: str | None
    confidence: float | None
    corrected: bool
    lines: list[int]


def field_views(
    document: Mapping[str, Any], corrections: Sequence[ReceiptCorrection]
) -> list[FieldView]:
    originals = original_values(document)
    current = current_values(document, corrections)
    conf = confidences(document)
    raw_fields = (document.get("receipt") or {}).get("fields") or {}
    corrected = {c.field for c in corrections}
    out = []
    for spec in FIELDS:
        entry = raw_fields.get(spec.name)
        lines = entry.get("lines", []) if isinstance(entry, dict) else []
        out.append(
            FieldView(
                name=spec.name,
                label=spec.label,
                value=current[spec.name],
                original=originals[spec.name],
                confidence=conf[spec.name],
                corrected=spec.name in corrected,
                lines=[int(x) for x in lines if isinstance(x, int)],
            )
        )
    return out


@dataclass(frozen=True)
class LineBox:
    id: int
    text: str
    points: str
    confidence: float


@dataclass(frozen=True)
class Overlay:
    width: int
    height: int
    lines: list[LineBox]


def overlay(document: Mapping[str, Any]) -> Overlay | None:
    """The OCR lines' boxes in the pixels of the image they were read from, if it is known."""
    receipt = document.get("receipt") or {}
    size = receipt.get("image_size")
    if not (isinstance(size, list | tuple) and len(size) == 2):
        return None
    boxes = []
    for line in receipt.get("lines") or []:
        try:
            points = " ".join(f"{float(x):.1f},{float(y):.1f}" for x, y in line["box"])
            boxes.append(
                LineBox(
                    int(line["id"]),
                    str(line.get("text", "")),
                    points,
                    float(line.get("confidence", 1)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return Overlay(int(size[0]), int(size[1]), boxes)


def review_reasons(document: Mapping[str, Any]) -> list[str]:
    receipt = document.get("receipt") or {}
    reasons = [str(r) for r in receipt.get("review_reasons") or []]
    reasons += [str(r) for r in (receipt.get("quality") or {}).get("reasons") or []]
    return list(dict.fromkeys(reasons)) or ["flagged by the scanner (no reason given)"]
