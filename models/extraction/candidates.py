"""Money candidates: every amount on the receipt with the label and layout evidence around it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from models.extraction.amounts import Amount, clean_amount_text, find_amounts
from models.extraction.keywords import Label, label_of
from models.extraction.layout import Line, Page

_RATE = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")


@dataclass(frozen=True, slots=True)
class MoneyCandidate:
    """One amount and what the receipt says about it."""

    value: Decimal
    label: Label | None
    strength: float
    line: Line
    label_lines: tuple[int, ...]
    label_text: str
    rate: Decimal | None
    rightmost: bool

    @property
    def line_ids(self) -> list[int]:
        return sorted({self.line.id, *self.label_lines})


def _rate(text: str) -> Decimal | None:
    m = _RATE.search(text)
    return Decimal(m.group(1).replace(",", ".")) if m else None


def _label_for(
    page: Page, line: Line, prefix: str, amounts: dict[int, list[Amount]]
) -> tuple[Label | None, float, tuple[int, ...], str]:
    """The label from the text before the amount, the row's left part, or the line just above."""
    found = label_of(prefix) if prefix.strip() else None
    if found:
        return found[0], found[1], (), prefix
    for other in reversed(page.left_of(line)):
        text = clean_amount_text(other.text)
        found = label_of(text)
        if found:
            return found[0], found[1] * 0.95, (other.id,), other.text
        if amounts[other.id]:
            break  # another amount sits between: the label is not ours
    if not prefix.strip() and not page.left_of(line):
        above = page.above(line)
        if above is not None and not any(amounts[o.id] for o in page.row_of(above)):
            found = label_of(above.text)
            if found:  # a total split over two lines: 'TOTAL' then the amount below
                return found[0], found[1] * 0.8, (above.id,), above.text
    return None, 0.0, (), prefix


#: A tax summary table's heading: the amounts below it restate the tax, not the total.
_SUMMARY = re.compile(r"\b(?:GST|TAX|VAT|MWST|TVA|IVA|BTW)\s*SUMMARY\b", re.I)
#: ... a column heading that starts one, or heads the item table's tax codes instead.
_TAX_CODE = re.compile(r"\bTAX\s+CODE\b", re.I)
#: '100.000' on a payment line: some tills print three decimals there.
_THREE_DECIMALS = re.compile(r"(?<![\d.,])(\d{1,5})[.,](\d{2})0(?![\d.,])")


def _summary_start(page: Page, cands: list[MoneyCandidate]) -> int:
    """The reading order of a tax summary heading, or past the end when there is none.

    A summary restates the bill after its totals: a 'TAX CODE' heading above the first total
    or subtotal is a column of the item table ('QTY  PRICE  AMOUNT  TAX CODE'), not one.
    """
    labelled = [c.line.order for c in cands if c.label in (Label.TOTAL, Label.SUBTOTAL)]
    first = min(labelled, default=-1)
    return next(
        (
            ln.order
            for ln in page.lines
            if _SUMMARY.search(ln.text) or (ln.order > first and _TAX_CODE.search(ln.text))
        ),
        len(page.lines),
    )


def _payment_amounts(page: Page, line: Line, text: str) -> list[Amount]:
    """'CASH 100.000': an amount with three decimals on a payment line, read as money."""
    if _THREE_DECIMALS.search(text) is None:
        return []
    row_text = " ".join(o.text for o in page.row_of(line))
    found = label_of(row_text)
    if found is None or found[0] not in (Label.TENDERED, Label.CHANGE):
        return []
    return [
        Amount(
            Decimal(f"{m.group(1)}.{m.group(2)}"), line.id, m.start(), m.end(), True, None, False
        )
        for m in _THREE_DECIMALS.finditer(text)
    ]


def money_candidates(
    page: Page, decimal_comma: bool, whole_units: bool = False
) -> list[MoneyCandidate]:
    """Every amount on the receipt; on a labelled line only the rightmost amount takes the label.
    `whole_units`: the receipt's currency has no minor unit (`amounts.WHOLE_UNIT_CURRENCIES`).

    Below a tax summary heading ('GST SUMMARY') totals lose their label: the table restates
    the taxed amounts, it does not state what was paid.
    """
    out: list[MoneyCandidate] = []
    cleaned = {line.id: clean_amount_text(line.text) for line in page.lines}
    by_line = {i: find_amounts(t, i, decimal_comma, whole_units) for i, t in cleaned.items()}
    for line in page.lines:
        if not by_line[line.id] and not (decimal_comma or whole_units):
            by_line[line.id] = _payment_amounts(page, line, cleaned[line.id])
    for line in page.lines:
        text = cleaned[line.id]
        amounts = by_line[line.id]
        if not amounts:
            continue
        row = page.row_of(line)
        rightmost_in_row = all(o is line or not by_line[o.id] or o.x0 < line.x0 for o in row)
        for k, amount in enumerate(amounts):
            last = k == len(amounts) - 1
            label: Label | None
            if last:
                label, strength, ids, label_text = _label_for(
                    page, line, text[: amount.start], by_line
                )
            else:
                label, strength, ids, label_text = None, 0.0, (), ""
            if label is Label.ROUNDING and abs(amount.value) >= 1:
                label, strength = Label.TOTAL, 0.9  # 'ROUNDING RM 13.60': the rounded total
            out.append(
                MoneyCandidate(
                    value=amount.value,
                    label=label,
                    strength=strength,
                    line=line,
                    label_lines=ids,
                    label_text=label_text,
                    rate=_rate(label_text or text) if label is Label.TAX else None,
                    rightmost=last and rightmost_in_row,
                )
            )
    summary = _summary_start(page, out)
    return [
        replace(c, label=None, strength=0.0)
        if c.line.order > summary and c.label in (Label.TOTAL, Label.SUBTOTAL)
        else c
        for c in out
    ]
