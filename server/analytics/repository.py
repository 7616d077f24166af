"""Aggregations over the receipts of ONE organisation: every query here is scoped by
`organization_id`, and the same SQL runs on SQLite and PostgreSQL.

- Spend by month, merchant and device is summed in the database from the stored columns
  (`total`, `effective_date`, `merchant`, the device). Money is exact: PostgreSQL sums its
  NUMERIC; SQLite (which stores money as text) sums integers of 1/10000, the column's scale.
- Category comes from the receipt message (`document.receipt.fields.category.value`, a JSON path
  SQLAlchemy writes portably), overridden by the latest correction of the field, grouped in SQL.
- Taxes are a JSON *array* (`document.receipt.fields.taxes`); unnesting it is not portable
  (`json_each` vs `jsonb_array_elements`), so the rows are read with a bound (`TAX_ROW_LIMIT`)
  and summed in Python. The 1M-receipt benchmark will need materialised columns for category
  and a receipt_taxes table (see server/analytics/README.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Float, Integer, Select, String, case, cast, exists, func, select
from sqlalchemy.orm import Session

from server.accounts.models import ReceiptCorrection
from server.db.models import Device, Receipt

Group = Literal["month", "category", "merchant", "device"]
GROUPS: tuple[Group, ...] = ("month", "category", "merchant", "device")
#: Most receipts whose taxes are read for one answer; more and the answer says it is partial.
TAX_ROW_LIMIT = 100_000
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
    truncated: bool


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

    def _sum(self) -> Any:
        if self._sqlite:
            units = cast(func.round(cast(Receipt.total, Float) * _SCALE), Integer)
            return func.coalesce(func.sum(units), 0)
        return func.coalesce(func.sum(Receipt.total), 0)

    def _decimal(self, raw: Any) -> Decimal:
        if self._sqlite:
            return money(Decimal(int(raw)) / _SCALE)
        return money(Decimal(raw))

    def _month(self) -> Any:
        if self._sqlite:
            return func.strftime("%Y-%m", Receipt.effective_date)
        return func.to_char(Receipt.effective_date, "YYYY-MM")

    def _category(self) -> Any:
        """The category read, or the latest correction of it (which may clear it)."""
        read = Receipt.document[("receipt", "fields", "category", "value")].as_string()
        corrected = (
            ReceiptCorrection.organization_id == self.organization_id,
            ReceiptCorrection.receipt_id == Receipt.id,
            ReceiptCorrection.field == "category",
        )
        latest = (
            select(ReceiptCorrection.new_value)
            .where(*corrected)
            .order_by(ReceiptCorrection.created_at.desc(), ReceiptCorrection.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        return case((exists().where(*corrected), latest), else_=read)

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
            raw = self._category()
        elif group == "merchant":
            raw = Receipt.merchant
        else:
            raw = Device.device_id
        key = cast(raw, String).label("key")
        total = self._sum().label("total")
        q = self._scoped(
            rng, key, Receipt.currency, total, func.count(Receipt.id).label("n")
        ).group_by(key, Receipt.currency)
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
        q = self._scoped(rng, Receipt.currency, self._sum(), func.count(Receipt.id)).group_by(
            Receipt.currency
        )
        rows = [
            SpendRow(None, cur, self._decimal(t), int(n))
            for cur, t, n in self.session.execute(q.order_by(Receipt.currency))
        ]
        return sum(r.receipts for r in rows), rows

    def taxes(self, rng: DateRange) -> TaxRead:
        """Tax amounts per (month, currency, label, rate), summed in Python over at most
        `TAX_ROW_LIMIT` receipts (the newest first, so a partial answer keeps recent months)."""
        taxes = Receipt.document[("receipt", "fields", "taxes")]
        q = (
            self._scoped(rng, self._month(), Receipt.currency, taxes)
            .order_by(Receipt.effective_date.desc(), Receipt.id)
            .limit(TAX_ROW_LIMIT + 1)
        )
        sums: dict[tuple[str, str | None, str | None, Decimal | None], Decimal] = {}
        count = 0
        for month, currency, lines in self.session.execute(q):
            count += 1
            if count > TAX_ROW_LIMIT:
                break
            for line in lines if isinstance(lines, list) else []:
                amount = _decimal_or_none(line.get("amount")) if isinstance(line, dict) else None
                if amount is None:
                    continue
                label = line.get("label")
                k = (
                    str(month),
                    currency,
                    str(label) if label else None,
                    _decimal_or_none(line.get("rate")),
                )
                sums[k] = sums.get(k, Decimal(0)) + amount
        rows = [
            TaxRow(m, cur, label, _plain(rate) if rate is not None else None, money(amount))
            for (m, cur, label, rate), amount in sorted(sums.items(), key=_tax_order)
        ]
        return TaxRead(rows, truncated=count > TAX_ROW_LIMIT)


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros or an exponent: 20.00 -> 20, 5.50 -> 5.5."""
    n = value.normalize()
    exponent = n.as_tuple().exponent
    return n.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else n


def _decimal_or_none(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def _tax_order(item: tuple[tuple[str, str | None, str | None, Decimal | None], Decimal]) -> Any:
    (month, currency, label, rate), _ = item
    return (month, currency or "", label or "", rate if rate is not None else Decimal(-1))
