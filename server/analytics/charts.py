"""Horizontal bar charts as data for inline SVG: a label and a value over each bar, widths in
percent of the largest bar of the same currency, so they read on a phone and a desktop alike
without scaling the text (the page draws them; no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

ROW_HEIGHT = 40
MAX_LABEL = 28


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: str
    note: str
    percent: float
    y: int


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return len(self.bars) * ROW_HEIGHT


@dataclass(frozen=True)
class Point:
    label: str
    currency: str | None
    amount: Decimal
    receipts: int | None = None


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def bar_chart(chart_id: str, title: str, points: Sequence[Point]) -> Chart:
    largest: dict[str | None, Decimal] = {}
    for p in points:
        largest[p.currency] = max(largest.get(p.currency, Decimal(0)), abs(p.amount))
    bars = []
    for i, p in enumerate(points):
        top = largest[p.currency]
        percent = float(abs(p.amount) / top * 100) if top else 0.0
        note = ""
        if p.receipts is not None:
            note = f"{p.receipts} receipt{'' if p.receipts == 1 else 's'}"
        bars.append(
            Bar(
                key=p.label,
                label=_short(p.label),
                value=f"{p.amount} {p.currency or ''}".strip(),
                note=note,
                percent=round(max(percent, 0.5 if p.amount else 0.0), 2),
                y=i * ROW_HEIGHT,
            )
        )
    return Chart(chart_id, title, bars)
