"""Line items: the priced rows between the header and the first subtotal or total."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from models.extraction.candidates import MoneyCandidate
from models.extraction.keywords import Label
from models.extraction.layout import Page

_QTY = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:[.,]\d{1,3})?)\s*(?:X|x|\*|@|PC|PCS|EA|UNITS?|STK)(?![A-Za-z])"
)
_BARE_INT = re.compile(r"(?<![\d.,])(\d{1,3})(?![\d.,])")
_NOT_ITEM = re.compile(
    r"TOTAL|SUBTOTAL|QTY|ITEM\(S\)|CHANGE|CASH|TENDER|ROUND|TAX|GST|VAT|BALANCE|PAID|DISC",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Item:
    description: str
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal
    lines: list[int]
    confidence: float


def _letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def _quantity_and_unit(
    row_text: str, amount: Decimal, unit: Decimal | None
) -> tuple[Decimal | None, Decimal | None, bool]:
    """(quantity, unit price, whether quantity x unit price = amount) for one priced row."""
    qty_match = _QTY.search(row_text)
    quantity: Decimal | None = None
    if qty_match:
        quantity = Decimal(qty_match.group(1).replace(",", "."))
    elif unit is not None and unit > 0:
        ratio = amount / unit
        if ratio == ratio.to_integral_value() and 1 <= ratio <= 999:
            quantity = ratio.normalize()
    if quantity is not None and unit is None and quantity > 0:
        unit = (amount / quantity).quantize(Decimal("0.01"))
    consistent = (
        quantity is not None
        and unit is not None
        and abs(quantity * unit - amount) < Decimal("0.02")
    )
    return quantity, unit, consistent


def _description(page: Page, c: MoneyCandidate, used: set[int]) -> tuple[str, list[int]] | None:
    """The item's words: left on its row, or on the line just above (two-line items)."""
    row = page.row_of(c.line)
    texts = [o.text for o in row if o.x0 < c.line.x0 or o is c.line]
    parts = [t for t in texts if _letters(t) >= 2 and not _NOT_ITEM.search(t)]
    ids = [o.id for o in row if o.x0 <= c.line.x0]
    if not parts:
        above = page.above(row[0])
        if (
            above is not None
            and _letters(above.text) >= 3
            and above.id not in used
            and not _NOT_ITEM.search(above.text)
        ):
            parts = [above.text]
            ids = [above.id, *ids]
    if not parts:
        return None
    description = " ".join(parts)
    description = re.sub(r"\s*[-]?\d[\d.,]*\s*$", "", description).strip() or description
    return description.strip(" :*-"), ids


def find_items(page: Page, cands: list[MoneyCandidate], start_order: int) -> list[Item]:
    """Priced rows after `start_order` and before the first labelled sum."""
    stops = [c.line.order for c in cands if c.label in (Label.SUBTOTAL, Label.TOTAL)]
    end = min(stops) if stops else -1
    if end <= start_order:
        return []
    items: list[Item] = []
    used: set[int] = set()
    for c in cands:
        in_region = start_order < c.line.order < end
        if not in_region or not c.rightmost or c.label is not None or c.value <= 0:
            continue
        found = _description(page, c, used)
        if found is None:
            continue
        description, ids = found
        row_text = " ".join(o.text for o in page.row_of(c.line) if o.x0 <= c.line.x0)
        others = [o.value for o in cands if o.line.id in ids and o is not c and o.value > 0]
        quantity, unit, consistent = _quantity_and_unit(
            row_text, c.value, others[-1] if others else None
        )
        used.update(ids)
        items.append(
            Item(
                description=description,
                quantity=quantity,
                unit_price=unit,
                amount=c.value,
                lines=sorted(set(ids)),
                confidence=0.75 if consistent else 0.5,
            )
        )
    return items
