"""Choose the total and its parts as the arithmetically consistent set among the candidates."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product

from models.extraction.candidates import MoneyCandidate
from models.extraction.keywords import Label

_CENT = Decimal("0.01")
_ZERO = Decimal(0)
#: A tax or tip above this share of its base is not one (VAT tops out at 27 %).
_MAX_SHARE = Decimal("0.35")
#: Cash rounding (5 cents, as in Malaysia, Switzerland, Australia) applied without a line.
_CASH_ROUNDING = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class Totals:
    """The chosen amounts, each with its candidate, and what the arithmetic said."""

    total: MoneyCandidate | None
    total_confidence: float
    subtotal: MoneyCandidate | None = None
    taxes: list[MoneyCandidate] = field(default_factory=list)
    tip: MoneyCandidate | None = None
    discount: MoneyCandidate | None = None
    rounding: MoneyCandidate | None = None
    tendered: MoneyCandidate | None = None
    change: MoneyCandidate | None = None
    checks_passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _eq(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) < _CENT / 2


def _by_label(cands: list[MoneyCandidate], label: Label) -> list[MoneyCandidate]:
    return [c for c in cands if c.label is label]


def _last_best(cands: list[MoneyCandidate]) -> MoneyCandidate | None:
    """The strongest-labelled candidate, the lowest on the receipt among equals."""
    if not cands:
        return None
    return max(cands, key=lambda c: (c.strength, c.line.order))


@dataclass(slots=True)
class _Reconciled:
    subtotal: MoneyCandidate | None = None
    taxes: list[MoneyCandidate] = field(default_factory=list)
    tip: MoneyCandidate | None = None
    discount: MoneyCandidate | None = None
    rounding: MoneyCandidate | None = None
    tendered: MoneyCandidate | None = None
    change: MoneyCandidate | None = None
    base: MoneyCandidate | None = None
    sections: bool = False
    passed: list[str] = field(default_factory=list)


def _opt(cands: list[MoneyCandidate]) -> list[MoneyCandidate | None]:
    return [None, *cands[-3:]]


def _sections_add_up(value: Decimal, cands: list[MoneyCandidate]) -> bool:
    """Two section totals (taxed, untaxed, returns with a minus) that add up to the total."""
    sections = [c for c in _by_label(cands, Label.TOTAL) if not _eq(c.value, value)][-6:]
    return any(
        _eq(a.value + b.value, value) and a.line.order != b.line.order
        for i, a in enumerate(sections)
        for b in sections[i + 1 :]
    )


def _reconcile(
    value: Decimal, cands: list[MoneyCandidate], items_sum: Decimal | None, labelled: bool = True
) -> _Reconciled:
    """Find the parts that add up to `value`: subtotal + tax + tip - discount ± rounding, and
    the payment: tendered - change. `labelled`: some amount equal to `value` is labelled total
    (otherwise a subtotal of the same value alone proves nothing)."""
    result = _Reconciled()
    subtotals = _by_label(cands, Label.SUBTOTAL)
    # A 'tax' at 0 % with an amount is a summary row's taxable sum, not a tax.
    taxes = [c for c in _by_label(cands, Label.TAX) if c.value >= 0 and c.rate != 0]
    tips = _by_label(cands, Label.TIP)
    discounts = _by_label(cands, Label.DISCOUNT)
    roundings = [c for c in _by_label(cands, Label.ROUNDING) if abs(c.value) < 1]
    other_totals = [c for c in _by_label(cands, Label.TOTAL) if not _eq(c.value, value)]
    bases = subtotals[-3:] + other_totals[-3:]
    found = False
    for base, tax, tip, disc, rnd in product(
        bases, _opt(taxes), _opt(tips), _opt(discounts), _opt(roundings)
    ):
        if (tax and tax.value > _MAX_SHARE * base.value) or (
            tip and tip.value > _MAX_SHARE * base.value
        ):
            continue  # no tax rate or tip is a third of the bill
        parts = [base, tax, tip, disc, rnd]
        if all(p is None for p in parts[1:]) and (base.label is Label.TOTAL or not labelled):
            continue
        amount = base.value
        amount += tax.value if tax else _ZERO
        amount += tip.value if tip else _ZERO
        amount -= abs(disc.value) if disc else _ZERO
        # A rounding's sign is often lost ('(0.02)', '0.02'): accept either direction.
        adjust = abs(rnd.value) if rnd else _ZERO
        exact = _eq(amount + adjust, value) or _eq(amount - adjust, value)
        # Cash rounding to 5 cents is often applied without a line saying so.
        if exact or (rnd is None and tax is not None and abs(amount - value) <= _CASH_ROUNDING):
            result.subtotal = base if base.label is Label.SUBTOTAL else None
            result.taxes = [tax] if tax else []
            result.tip, result.discount, result.rounding = tip, disc, rnd
            result.base = base
            result.passed.append("parts add up to the total")
            found = True
            break
    if not found:
        result.subtotal = _last_best(subtotals)
        plausible = [t for t in taxes if t.value <= _MAX_SHARE * value]
        result.taxes = plausible[-1:]
        result.tip = _last_best(tips)
        result.discount = _last_best(discounts)
        result.rounding = _last_best(roundings)
    if not found and _sections_add_up(value, cands):
        result.passed.append("section totals add up to the total")
        result.sections = True
    _payment(value, cands, result)
    if items_sum is not None and items_sum > 0:
        # Items adding up to a subtotal confirm `value` only when that subtotal is one of the
        # parts found to add up to it; any other subtotal would vouch for every candidate.
        target = result.subtotal.value if found and result.subtotal else value
        if _eq(items_sum, target) or _eq(items_sum, value):
            result.passed.append("items add up")
    return result


def _payment(value: Decimal, cands: list[MoneyCandidate], result: _Reconciled) -> None:
    """Check the payment against `value`: tendered - change, paid = total, or a change whose
    tendered sum lost its label; records what passed in `result`."""
    tendereds = [c for c in _by_label(cands, Label.TENDERED) if c.value > 0]
    changes = [c for c in _by_label(cands, Label.CHANGE) if c.value >= 0]
    for tend, chg in product(tendereds, changes):
        if _eq(tend.value - chg.value, value):
            result.tendered, result.change = tend, chg
            result.passed.append("tendered - change = total")
            break
    else:
        equal = [t for t in tendereds if _eq(t.value, value)]
        implied = _implied_tender(value, cands, changes)
        if equal:
            result.tendered = equal[-1]
            result.passed.append("paid = total")
        elif implied is not None:
            result.tendered, result.change = implied
            result.passed.append("tendered - change = total")
        else:
            result.tendered = _last_best(tendereds)
            result.change = _last_best(changes)


def _implied_tender(
    value: Decimal, cands: list[MoneyCandidate], changes: list[MoneyCandidate]
) -> tuple[MoneyCandidate, MoneyCandidate] | None:
    """A change whose amount plus `value` is an amount printed near it: the tendered sum whose
    label OCR lost or misread ('TENOER 100.00', 'CHANGE 20.65' for a total of 79.35)."""
    for chg in changes:
        if chg.value <= 0:
            continue
        for c in cands:
            near = abs(c.line.order - chg.line.order) <= 4
            if near and c.label in (None, Label.TENDERED) and _eq(c.value, value + chg.value):
                return c, chg
    return None


def rounding_pairs(cands: list[MoneyCandidate]) -> tuple[set[Decimal], set[Decimal]]:
    """(rounded, unrounded) values: an amount before a rounding line, and the amount after it
    that differs from it by exactly the rounding ('TOTAL 80.91', 'ROUNDING -0.01', '80.90')."""
    rounded: set[Decimal] = set()
    unrounded: set[Decimal] = set()
    kinds = (Label.TOTAL, Label.SUBTOTAL, None)
    for r in cands:
        if r.label is not Label.ROUNDING or not 0 < abs(r.value) < 1:
            continue
        before = [c for c in cands if c.line.order < r.line.order and c.value > 0]
        after = [c for c in cands if c.line.order > r.line.order and c.value > 0]
        before = [c for c in before if c.label in kinds][-4:]
        after = [c for c in after if c.label in kinds][:4]
        pair = next(
            (
                (p, q)
                for p in reversed(before)
                for q in after
                if _eq(abs(p.value - q.value), abs(r.value))
            ),
            None,
        )
        if pair is not None:
            unrounded.add(pair[0].value)
            rounded.add(pair[1].value)
    return rounded, unrounded


def _score(
    value: Decimal,
    cands: list[MoneyCandidate],
    *,
    rounded: set[Decimal],
    unrounded: set[Decimal],
    counts: Counter[Decimal],
    items_sum: Decimal | None,
    max_value: Decimal,
    last_total_order: int,
) -> tuple[float, _Reconciled]:
    labelled = [c for c in cands if _eq(c.value, value) and c.label is Label.TOTAL]
    rec = _reconcile(value, cands, items_sum, bool(labelled))
    score = 2.0 * max((c.strength for c in labelled), default=0.0)
    base = rec.base
    if (
        base is not None
        and base.label is Label.TOTAL
        and labelled
        and base.line.order < max(c.line.order for c in labelled)
    ):
        score += 1.0  # a later total built on an earlier one ('TOTAL' + service + tax)
    score += 0.3 * min(counts[value] - 1, 3)
    score += 1.2 * len(rec.passed)
    if value in rounded:
        score += 1.5  # the figure after a rounding line that adjusts an earlier one: what was paid
    elif value in unrounded:
        score -= 1.0
    if labelled and max(c.line.order for c in labelled) == last_total_order:
        score += 0.5  # the last total before the payment lines
    if value == max_value:
        score += 0.5
    tallest = max((c.line.rel_height for c in cands if _eq(c.value, value)), default=1.0)
    score += 0.4 * max(min(tallest - 1.0, 1.0), 0.0)
    lowest = max((c.line.rel_y for c in labelled), default=0.0)
    score += 0.3 * lowest
    # Amounts that are clearly something else are poor totals.
    other = [c for c in cands if _eq(c.value, value) and c.label not in (None, Label.TOTAL)]
    if other and not labelled:
        # ... unless nothing is labelled total and the subtotal is the last sum printed.
        subtotal_only = all(c.label is Label.SUBTOTAL for c in other)
        score -= 0.5 if subtotal_only and last_total_order < 0 else 1.0
    return score, rec


def choose_totals(cands: list[MoneyCandidate], items_sum: Decimal | None = None) -> Totals:
    """Pick the total whose parts are most consistent, and flag what does not add up."""
    positive = [c for c in cands if c.value > 0]
    if not positive:
        return Totals(total=None, total_confidence=0.0, problems=["no amount found"])
    counts: Counter[Decimal] = Counter(c.value for c in positive)
    pool = {c.value for c in positive if c.label in (Label.TOTAL, Label.SUBTOTAL, None)}
    if not any(c.label is Label.TOTAL for c in positive):
        # No total was read ('Grand TOTAL A51.30': its mark misread and glued on): the cash
        # handed over that is exactly what the items, or the bare amounts above it, add up to
        # was the total.
        for paid in (c for c in positive if c.label is Label.TENDERED):
            above = sum(
                (c.value for c in positive if c.label is None and c.line.order < paid.line.order),
                Decimal(0),
            )
            if _eq(paid.value, items_sum if items_sum is not None else above):
                pool.add(paid.value)
                items_sum = paid.value
    if not pool:
        pool = {c.value for c in positive}
    non_payment = [c.value for c in positive if c.label not in (Label.TENDERED, Label.CHANGE)]
    max_value = max(non_payment or [c.value for c in positive])
    payments = [c.line.order for c in positive if c.label in (Label.TENDERED, Label.CHANGE)]
    first_payment = min(payments, default=10**9)
    total_orders = [
        c.line.order for c in positive if c.label is Label.TOTAL and c.line.order < first_payment
    ]
    last_total_order = max(total_orders, default=-1)
    rounded, unrounded = rounding_pairs(cands)
    scored = sorted(
        (
            (
                *_score(
                    v,
                    cands,
                    rounded=rounded,
                    unrounded=unrounded,
                    counts=counts,
                    items_sum=items_sum,
                    max_value=max_value,
                    last_total_order=last_total_order,
                ),
                v,
            )
            for v in pool
        ),
        key=lambda t: (t[0], t[2]),
        reverse=True,
    )
    best_score, rec, value = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else best_score - 3.0
    margin = best_score - runner_up
    confidence = 1.0 / (1.0 + math.exp(-(1.2 * margin + 0.6 * best_score - 1.5)))
    chosen = [c for c in positive if _eq(c.value, value)]
    total = max(chosen, key=lambda c: (c.label is Label.TOTAL, c.strength, c.line.order))
    problems: list[str] = []
    # A subtotal that does not explain the total is a problem when the receipt states the other
    # parts (tax, tip, discount) and they still do not add up, or when nothing else confirms the
    # total. A lone subtotal under a total confirmed by the payment most often leaves out a tax
    # that was printed without a label or is included in the prices: no doubt is raised then.
    stated = bool(rec.taxes or rec.tip or rec.discount)
    if (
        rec.subtotal is not None
        and not rec.sections  # the subtotal is one section's ('TOTAL 6% SUPPLIES (EXCL. GST)')
        and not _eq(rec.subtotal.value, value)
        and "parts add up to the total" not in rec.passed
        and (stated or not rec.passed)
    ):
        problems.append(
            f"subtotal {rec.subtotal.value} with tax, tip, discount and rounding "
            f"does not add up to the total {value}"
        )
    if (
        rec.tendered is not None
        and rec.change is not None
        and not any("tendered" in p for p in rec.passed)
    ):
        problems.append(
            f"tendered {rec.tendered.value} - change {rec.change.value} != total {value}"
        )
    if not any(c.label is Label.TOTAL for c in chosen) and not rec.passed:
        problems.append("no amount is labelled as the total")
    if problems:
        confidence *= 0.6  # contradictions make even a well-labelled total doubtful
    return Totals(
        total=total,
        total_confidence=round(min(max(confidence, 0.02), 0.99), 3),
        subtotal=rec.subtotal,
        taxes=rec.taxes,
        tip=rec.tip,
        discount=rec.discount,
        rounding=rec.rounding,
        tendered=rec.tendered,
        change=rec.change,
        checks_passed=rec.passed,
        problems=problems,
    )
