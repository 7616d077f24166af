"""Receipts of ONE organisation as the dashboard browses and corrects them.

`ReceiptBrowser` extends the API's organisation-scoped `ReceiptRepository`: every query starts
from its scoped `_select()` (or filters on `organization_id` itself), so tenancy stays in one
place. Build it only through `server.dashboard.deps`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Float, Text, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from server.accounts.models import ReceiptCorrection
from server.db.models import Device, Receipt
from server.receipts.repository import ReceiptRecord, ReceiptRepository

SORTS: dict[str, str] = {
    "-captured": "Newest scan first",
    "captured": "Oldest scan first",
    "-date": "Latest date first",
    "date": "Earliest date first",
    "-total": "Largest total first",
    "total": "Smallest total first",
    "merchant": "Merchant A-Z",
    "-merchant": "Merchant Z-A",
}
Review = Literal["any", "yes", "no"]


@dataclass(frozen=True)
class BrowseFilter:
    text: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    device_id: str | None = None
    review: Review = "any"
    min_total: Decimal | None = None
    max_total: Decimal | None = None


@dataclass(frozen=True)
class BrowsePage:
    records: Sequence[ReceiptRecord]
    total_count: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total_count // self.per_page))


class ReceiptBrowser(ReceiptRepository):
    """Searching, sorting, paging and correcting the receipts of one organisation."""

    def _amount(self) -> Any:
        # SQLite stores money as text: compare and sort it as a number there.
        if self.session.get_bind().dialect.name == "sqlite":
            return cast(Receipt.total, Float)
        return Receipt.total

    def _conditions(self, f: BrowseFilter) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if f.text:
            needle = f.text.strip().lower()
            lines_text = cast(Receipt.document["receipt"]["lines"], Text)
            conds.append(
                or_(
                    func.lower(Receipt.merchant).contains(needle, autoescape=True),
                    func.lower(lines_text).contains(needle, autoescape=True),
                )
            )
        if f.date_from is not None:
            conds.append(Receipt.effective_date >= f.date_from)
        if f.date_to is not None:
            conds.append(Receipt.effective_date <= f.date_to)
        if f.device_id:
            conds.append(Device.device_id == f.device_id)
        if f.review != "any":
            conds.append(Receipt.needs_review.is_(f.review == "yes"))
        if f.min_total is not None:
            conds.append(self._amount() >= f.min_total)
        if f.max_total is not None:
            conds.append(self._amount() <= f.max_total)
        return conds

    def _order(self, sort: str) -> list[Any]:
        key = sort.lstrip("-")
        desc = sort.startswith("-")
        column: Any = {
            "captured": Receipt.captured_at,
            "date": Receipt.effective_date,
            "total": self._amount(),
            "merchant": func.lower(Receipt.merchant),
        }.get(key, Receipt.captured_at)
        first = column.desc().nulls_last() if desc else column.asc().nulls_last()
        return [first, Receipt.captured_at.desc(), Receipt.id.desc()]

    def browse(self, f: BrowseFilter, sort: str, page: int, per_page: int) -> BrowsePage:
        conds = self._conditions(f)
        count_q = (
            select(func.count())
            .select_from(Receipt)
            .outerjoin(Device, Device.id == Receipt.device_id)  # uploads have no device
            .where(Receipt.organization_id == self.organization_id, *conds)
        )
        total_count = int(self.session.scalar(count_q) or 0)
        q = (
            self._select()
            .where(*conds)
            .order_by(*self._order(sort))
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        records = [ReceiptRecord(r, d, i) for r, d, i in self.session.execute(q)]
        return BrowsePage(records, total_count, page, per_page)

    def device_ids(self) -> Sequence[str]:
        return self.session.scalars(
            select(Device.device_id)
            .where(Device.organization_id == self.organization_id)
            .order_by(Device.device_id)
        ).all()

    def for_update(self, receipt_id: uuid.UUID) -> ReceiptRecord | None:
        """The receipt, locked against a concurrent edit until the transaction ends."""
        q = self._select().where(Receipt.id == receipt_id).with_for_update(of=Receipt)
        row = self.session.execute(q).first()
        return None if row is None else ReceiptRecord(row[0], row[1], row[2])

    def all_corrections(self) -> Sequence[ReceiptCorrection]:
        return self.session.scalars(
            select(ReceiptCorrection)
            .where(ReceiptCorrection.organization_id == self.organization_id)
            .order_by(ReceiptCorrection.created_at, ReceiptCorrection.id)
        ).all()

    def add_correction(self, correction: ReceiptCorrection) -> None:
        if correction.organization_id != self.organization_id:
            raise ValueError("a correction of another organisation")
        self.session.add(correction)
        self.session.flush()
