"""Aggregations over the receipts of ONE organisation: every query here is scoped by
`organization_id`, and the same SQL runs on SQLite and PostgreSQL.

- Everything is grouped and summed in the database from columns, never from the JSON message:
  `total`, `effective_date`, `merchant`, the device, `category` and `tax_total` of `receipts`,
  and the tax lines of `receipt_taxes`. Category and taxes are derived from the message when a
  receipt is admitted and a correction overwrites the column (`server.receipts.derived`,
  migration 0010), so corrections win without a per-row subquery.
- Money is exact: PostgreSQL sums its NUMERIC; SQLite (which stores money as text) sums
  integers of 1/10000, the column's scale.
- On PostgreSQL `ix_receipts_org_effective_date` covers the columns summed and filtered here:
  an organisation's spend per month or category is an index-only scan.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from server.analytics.rollup import spend_monthly
from server.db.models import Device, Receipt, ReceiptTax

Group = Literal["month", "category", "merchant", "device"]
GROUPS: tuple[Group, ...] = ("month", "category", "merchant", "device")
_SCALE = 10_000  # Money is NUMERIC(18, 4)


@dataclass(frozen=True)
class DateRange:
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class SpendRow:
    key: str | None
    currency: str | None
    total: Decimal
    receipts: int


@dataclass(frozen=True)
class TaxRow:
    period: str  # YYYY-MM
    currency: str | None
    label: str | None
    rate: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class TaxRead:
    rows: Sequence[TaxRow]
    truncated: bool  # never since 0010 (summed in SQL); kept for the API's `taxes_partial`


def whole_months(rng: DateRange) -> tuple[dt.date | None, dt.date | None]:
    """[first, end) of the whole calendar months inside `rng` (None: unbounded on that side);
    empty when first >= end."""
    first = rng.start
    if first is not None and first.day != 1:
        first = _next_month(first)
    end = rng.end
    if end is not None:
        end = _next_month(end) if _next_month(end) - dt.timedelta(days=1) == end else end
        end = end.replace(day=1)
    return first, end


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def money(value: Decimal) -> Decimal:
    """Two decimals unless the exact value has more (never rounds)."""
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value.normalize()


class AnalyticsRepository:
    """The organisation-scoped aggregations; build it only through a tenancy dependency."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id
        # once, not per row converted (`_decimal`): asking the session for its bind is not free
        self._sqlite = session.get_bind().dialect.name == "sqlite"

    def _sum(self, column: Any = Receipt.total) -> Any:
        if self._sqlite:
            units = cast(func.round(cast(column, Float) * _SCALE), Integer)
            return func.coalesce(func.sum(units), 0)
        return func.coalesce(func.sum(column), 0)

    def _decimal(self, raw: Any) -> Decimal:
        if self._sqlite:
            return money(Decimal(int(raw)) / _SCALE)
        return money(Decimal(raw))

    def _month(self) -> Any:
        if self._sqlite:
            return func.strftime("%Y-%m", Receipt.effective_date)
        return func.to_char(Receipt.effective_date, "YYYY-MM")

    def _scoped(self, rng: DateRange, *columns: Any) -> Select[Any]:
        q = (
            select(*columns)
            .select_from(Receipt)
            .outerjoin(Device, Device.id == Receipt.device_id)  # uploads have no device
            .where(Receipt.organization_id == self.organization_id)
            .where(Receipt.duplicate_of.is_(None))  # a receipt scanned twice counts once
            .where(Receipt.held_at.is_(None))  # held over a monthly quota: not yet counted
        )
        if rng.start is not None:
            q = q.where(Receipt.effective_date >= rng.start)
        if rng.end is not None:
            q = q.where(Receipt.effective_date <= rng.end)
        return q

    def spend(
        self,
        group: Group,
        rng: DateRange,
        limit: int | None = None,
        *,
        rollup: bool = True,
    ) -> list[SpendRow]:
        """Sum and count of receipts per (key, currency); months in order, others largest first.

        `rollup=False` sums the receipts even where the rollup could answer (the two are equal:
        tests compare them)."""
        use_rollup = rollup and group in ("month", "category") and not self._sqlite
        q = self._spend_rollup(group, rng) if use_rollup else self._spend_receipts(group, rng)
        key, currency, total = q.selected_columns[:3]
        if group == "month":
            q = q.order_by(key, currency)
        else:
            q = q.order_by(total.desc(), key, currency)
        if limit is not None:
            q = q.limit(limit)
        return [
            SpendRow(k, cur, self._decimal(t), int(n)) for k, cur, t, n in self.session.execute(q)
        ]

    def _key(self, group: Group) -> Any:
        if group == "month":
            raw = self._month()
        elif group == "category":
            raw = Receipt.category
        elif group == "merchant":
            raw = Receipt.merchant
        else:
            raw = Device.device_id
        return cast(raw, String).label("key")

    def _spend_receipts(self, group: Group, rng: DateRange) -> Select[Any]:
        key = self._key(group)
        total = self._sum().label("total")
        return self._scoped(rng, key, Receipt.currency, total, func.count().label("n")).group_by(
            key, Receipt.currency
        )

    def _spend_rollup(self, group: Group, rng: DateRange) -> Select[Any]:
        """Whole months from `receipt_spend_monthly`, partial ones from the receipts, summed."""
        first, end = whole_months(rng)
        has_whole = first is None or end is None or first < end
        parts: list[Select[Any]] = []
        if has_whole:
            t = spend_monthly.c
            key = func.to_char(t.month, "YYYY-MM") if group == "month" else t.category
            whole = select(cast(key, String).label("key"), t.currency, t.total, t.receipts).where(
                t.organization_id == self.organization_id
            )
            if first is not None:
                whole = whole.where(t.month >= first)
            if end is not None:
                whole = whole.where(t.month < end)
            parts.append(whole)
        edges: list[ColumnElement[bool]] = []
        if not has_whole:
            edges.append(Receipt.effective_date.is_not(None))  # the whole range is partial
        else:
            if first is not None and first != rng.start:
                edges.append(Receipt.effective_date < first)
            if end is not None and rng.end is not None and end <= rng.end:
                edges.append(Receipt.effective_date >= end)
        if edges:
            amount = func.coalesce(Receipt.total, 0)
            parts.append(
                self._scoped(rng, self._key(group), Receipt.currency, amount, literal(1)).where(
                    or_(*edges)
                )
            )
        u = union_all(*parts).subquery()
        key_col, currency_col, total_col, n_col = u.c
        return select(
            key_col.label("key"),
            currency_col.label("currency"),
            func.sum(total_col).label("total"),
            func.sum(n_col).label("n"),
        ).group_by(key_col, currency_col)

    def totals(self, rng: DateRange) -> tuple[int, list[SpendRow]]:
        """Receipts in the range, and their sum per currency (key None)."""
        q = self._scoped(rng, Receipt.currency, self._sum(), func.count()).group_by(
            Receipt.currency
        )
        rows = [
            SpendRow(None, cur, self._decimal(t), int(n))
            for cur, t, n in self.session.execute(q.order_by(Receipt.currency))
        ]
        return sum(r.receipts for r in rows), rows

    def tax_totals(self, rng: DateRange) -> list[SpendRow]:
        """Tax per currency (key None) over the receipts in the range that have a tax line;
        `receipts` counts those receipts."""
        q = (
            self._scoped(rng, Receipt.currency, self._sum(Receipt.tax_total), func.count())
            .where(Receipt.tax_total.is_not(None))
            .group_by(Receipt.currency)
            .order_by(Receipt.currency)
        )
        return [
            SpendRow(None, cur, self._decimal(t), int(n)) for cur, t, n in self.session.execute(q)
        ]

    def taxes(self, rng: DateRange) -> TaxRead:
        """Tax amounts per (month, currency, label, rate), summed in SQL from `receipt_taxes`."""
        month = self._month().label("month")
        q = (
            self._scoped(
                rng,
                month,
                Receipt.currency,
                ReceiptTax.label,
                ReceiptTax.rate,
                self._sum(ReceiptTax.amount),
            )
            .join(
                ReceiptTax,
                (ReceiptTax.receipt_id == Receipt.id)
                & (ReceiptTax.organization_id == Receipt.organization_id),
            )
            .group_by(month, Receipt.currency, ReceiptTax.label, ReceiptTax.rate)
        )
        rows = [
            TaxRow(
                str(m),
                cur,
                label,
                _plain(Decimal(rate)) if rate is not None else None,
                self._decimal(amount),
            )
            for m, cur, label, rate, amount in self.session.execute(q)
        ]
        rows.sort(key=_tax_order)
        return TaxRead(rows, truncated=False)


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros or an exponent: 20.00 -> 20, 5.50 -> 5.5."""
    n = value.normalize()
    exponent = n.as_tuple().exponent
    return n.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else n


def _tax_order(row: TaxRow) -> Any:
    return (
        row.period,
        row.currency or "",
        row.label or "",
        row.rate if row.rate is not None else Decimal(-1),
    )
