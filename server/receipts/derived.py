"""The query columns of a receipt, derived from its message once, when it is admitted.

The receipt message (`receipts.document`) stays what the scanner read. What lists, filters and
analytics need from it is copied into real columns so that no query reads JSON per row
(a JSON path per row and a Python sum over the tax arrays did not hold at a million receipts):

- `receipts.category`: `fields.category.value` (a correction of the field overwrites it);
- `receipts.tax_total`: the sum of the tax lines' amounts (null when no line has one);
- `receipt_taxes`: one row per tax line with an amount (label, rate, amount), so tax totals
  per month and rate are a grouped SQL sum.

`server.receipts.intake.admit_receipts` applies these to every new receipt, whatever brought it;
migration 0010 backfilled receipts stored before it with the same rules, in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

#: Longest category and tax label kept (the columns' lengths).
CATEGORY_MAX = 500
LABEL_MAX = 100
#: Money columns are NUMERIC(18, 4): amounts of 10^14 or more do not fit.
_MONEY_LIMIT = Decimal(10) ** 14


def _fields(document: Mapping[str, Any]) -> Mapping[str, Any]:
    receipt = document.get("receipt")
    fields = receipt.get("fields") if isinstance(receipt, Mapping) else None
    return fields if isinstance(fields, Mapping) else {}


def money_or_none(raw: Any) -> Decimal | None:
    """A finite amount that fits a money column, else None (junk is never an error here)."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or abs(value) >= _MONEY_LIMIT:
        return None
    return value


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros or an exponent: 20.00 -> 20, 5.50 -> 5.5 (one key per rate)."""
    n = value.normalize()
    exponent = n.as_tuple().exponent
    return n.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else n


def category_of(document: Mapping[str, Any]) -> str | None:
    entry = _fields(document).get("category")
    value = entry.get("value") if isinstance(entry, Mapping) else None
    return str(value)[:CATEGORY_MAX] if value not in (None, "") else None


def tax_lines(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tax lines that have an amount: position (in the message), label, rate, amount."""
    taxes = _fields(document).get("taxes")
    out: list[dict[str, Any]] = []
    for position, line in enumerate(taxes if isinstance(taxes, list) else []):
        if not isinstance(line, Mapping):
            continue
        amount = money_or_none(line.get("amount"))
        if amount is None:
            continue
        label = line.get("label")
        rate = money_or_none(line.get("rate"))
        out.append(
            {
                "position": position,
                "label": str(label)[:LABEL_MAX] if label else None,
                "rate": plain(rate) if rate is not None else None,
                "amount": amount,
            }
        )
    return out


def query_columns(document: Mapping[str, Any]) -> dict[str, Any]:
    """`category` and `tax_total` of a new receipt (column -> value)."""
    lines = tax_lines(document)
    return {
        "category": category_of(document),
        "tax_total": sum((t["amount"] for t in lines), Decimal(0)) if lines else None,
    }


def tax_rows(
    receipt_id: uuid.UUID, organization_id: uuid.UUID, document: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The `receipt_taxes` rows of a receipt (column -> value)."""
    return [
        {"receipt_id": receipt_id, "organization_id": organization_id, **line}
        for line in tax_lines(document)
    ]
