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

from sqlalchemy import Float, Integer, Select, String, cast, func, select
from sqlalchemy.orm import Session

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


def money(value: Decimal) -> Decimal:
    """Two decimals unless the exact value has more (never rounds)."""
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value.normalize()


class AnalyticsRepository:
    """The organisation-scoped aggregations; build it only through a tenancy dependency."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    @property
    def _sqlite(self) -> bool:
        return self.session.get_bind().dialect.name == "sqlite"

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

    def spend(self, group: Group, rng: DateRange, limit: int | None = None) -> list[SpendRow]:
        """Sum and count of receipts per (key, currency); months in order, others largest first."""
        raw: Any
        if group == "month":
            raw = self._month()
        elif group == "category":
            raw = Receipt.category
        elif group == "merchant":
            raw = Receipt.merchant
        else:
            raw = Device.device_id
        key = cast(raw, String).label("key")
        total = self._sum().label("total")
        q = self._scoped(rng, key, Receipt.currency, total, func.count().label("n")).group_by(
            key, Receipt.currency
        )
        if group == "month":
            q = q.order_by(key, Receipt.currency)
        else:
            q = q.order_by(total.desc(), key, Receipt.currency)
        if limit is not None:
            q = q.limit(limit)
        return [
            SpendRow(k, cur, self._decimal(t), int(n)) for k, cur, t, n in self.session.execute(q)
        ]

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
