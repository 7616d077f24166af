"""Reading receipts of ONE organisation: every query here is scoped by `organization_id`.

The list walks `ix_receipts_org_captured` (organization_id, captured_at, id) backwards: the
cursor is a row-value comparison `(captured_at, id) < (:at, :id)`, which both databases use as
an index bound, so a deep page costs what the first does. The merchant filter is `ILIKE
'%text%'`, which PostgreSQL answers from the trigram index `ix_receipts_merchant_search`
(SQLite renders it `lower(merchant) LIKE lower(...)`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, and_, select, tuple_
from sqlalchemy.orm import Session

from server.accounts.models import ReceiptCorrection
from server.db.models import Device, Receipt, ReceiptImage

#: Any SELECT over receipts (what the scoping and filter helpers narrow and give back).
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class ReceiptFilter:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    merchant: str | None = None
    device_id: str | None = None
    include_duplicates: bool = True  # False: receipts flagged `duplicate_of` are left out
    include_held: bool = True  # False: receipts held over a monthly quota are left out


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character `/`) matching `text` anywhere."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


class ReceiptListRow(NamedTuple):
    """The columns a receipt list shows, read as a plain row: a page of the API's list is hot
    (every client polls it), and neither the message (`document`, kilobytes of JSON to decode
    per row) nor ORM objects (identity map, state tracking) are needed to show it."""

    id: uuid.UUID
    device_id: str | None  # None: an uploaded photo (no scanner)
    source: str
    duplicate_of: uuid.UUID | None
    captured_at: dt.datetime
    received_at: dt.datetime
    merchant: str | None
    receipt_date: dt.date | None
    total: Decimal | None
    currency: str | None
    needs_review: bool
    has_image: bool
    held_reason: str | None


@dataclass(frozen=True)
class ReceiptRecord:
    receipt: Receipt
    device_id: str | None  # None: an uploaded photo (no scanner)
    image: ReceiptImage | None


class ReceiptRepository:
    """The organisation-scoped view of receipts; build it only through the API's dependency."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def _joined(self, q: _Query) -> _Query:
        """`q` over the organisation's receipts with their scanner and image (both optional)."""
        return (
            q.select_from(Receipt)
            .outerjoin(Device, Device.id == Receipt.device_id)  # uploads have no device
            .outerjoin(
                ReceiptImage,
                and_(
                    ReceiptImage.receipt_id == Receipt.id,
                    ReceiptImage.organization_id == Receipt.organization_id,
                ),
            )
            .where(Receipt.organization_id == self.organization_id)
        )

    def _select(self) -> Select[Receipt, str | None, ReceiptImage]:
        return self._joined(select(Receipt, Device.device_id, ReceiptImage))

    def _filtered(
        self,
        q: _Query,
        filters: ReceiptFilter,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> _Query | None:
        """`q` narrowed by `filters` and the cursor, newest first; None when nothing can match."""
        if filters.date_from is not None:
            q = q.where(Receipt.effective_date >= filters.date_from)
        if filters.date_to is not None:
            q = q.where(Receipt.effective_date <= filters.date_to)
        if filters.merchant:
            q = q.where(Receipt.merchant.ilike(contains_pattern(filters.merchant), escape="/"))
        if filters.device_id:
            # By the device's key, looked up first: PostgreSQL then plans with that device's
            # statistics and walks ix_receipts_device_captured in order (a subquery's unknown
            # value made it sort every receipt of a large organisation's only scanner).
            device = self.session.scalar(
                select(Device.id).where(
                    Device.organization_id == self.organization_id,
                    Device.device_id == filters.device_id,
                )
            )
            if device is None:
                return None
            q = q.where(Receipt.device_id == device)
        if not filters.include_duplicates:
            q = q.where(Receipt.duplicate_of.is_(None))
        if not filters.include_held:
            q = q.where(Receipt.held_at.is_(None))
        if after is not None:
            captured_at, receipt_id = after
            q = q.where(tuple_(Receipt.captured_at, Receipt.id) < tuple_(captured_at, receipt_id))
        return q.order_by(Receipt.captured_at.desc(), Receipt.id.desc()).limit(limit)

    def list(
        self,
        filters: ReceiptFilter,
        *,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[ReceiptRecord]:
        """Newest capture first, ties broken by id; `after` is the last row of the previous page.
        Whole receipts with their messages (exports need them); a list shows `rows`."""
        q = self._filtered(self._select(), filters, after, limit)
        if q is None:
            return []
        return [ReceiptRecord(r, d, i) for r, d, i in self.session.execute(q)]

    def rows(
        self,
        filters: ReceiptFilter,
        *,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[ReceiptListRow]:
        """The page `list` would give, as `ReceiptListRow`s: the same order and filters, without
        the message or ORM objects (the image is only asked whether it exists).

        The page's ids are chosen first, from an index alone where one covers the filters
        (`ix_receipts_org_captured` for the plain list, `ix_receipts_device_captured` for one
        scanner, `ix_receipts_org_effective_date`, which includes `captured_at`, for a date
        range); only those rows are then read. A
        month in the middle of a large organisation's history otherwise read half its
        receipts to find one page."""
        chosen = select(Receipt.id)
        if not filters.device_id:
            chosen = chosen.where(Receipt.organization_id == self.organization_id)
        # else the device is looked up in this organisation (`_filtered`) and the rows read
        # below are scoped again: without the organisation here PostgreSQL picks one scanner's
        # page from ix_receipts_device_captured alone (with it, it scanned the organisation's
        # covering date index, which has the device too, and filtered).
        ids = self._filtered(chosen, filters, after, limit)
        if ids is None:
            return []
        page = ids.subquery("page")
        q = (
            self._joined(
                select(
                    Receipt.id,
                    Device.device_id,
                    Receipt.source,
                    Receipt.duplicate_of,
                    Receipt.captured_at,
                    Receipt.received_at,
                    Receipt.merchant,
                    Receipt.receipt_date,
                    Receipt.total,
                    Receipt.currency,
                    Receipt.needs_review,
                    ReceiptImage.receipt_id.is_not(None),
                    Receipt.held_reason,
                )
            )
            .join(page, page.c.id == Receipt.id)
            .order_by(Receipt.captured_at.desc(), Receipt.id.desc())
        )
        return [ReceiptListRow._make(row) for row in self.session.execute(q)]

    def corrections(self, receipt_id: uuid.UUID) -> Sequence[ReceiptCorrection]:
        """Corrections of one receipt, oldest first."""
        return self.session.scalars(
            select(ReceiptCorrection)
            .where(
                ReceiptCorrection.organization_id == self.organization_id,
                ReceiptCorrection.receipt_id == receipt_id,
            )
            .order_by(ReceiptCorrection.created_at, ReceiptCorrection.id)
        ).all()

    def get(self, receipt_id: uuid.UUID) -> ReceiptRecord | None:
        row = self.session.execute(self._select().where(Receipt.id == receipt_id)).first()
        return None if row is None else ReceiptRecord(row[0], row[1], row[2])
