"""Export queries, all scoped to ONE organisation: receipts paged by cursor, account codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.exports.models import AccountCode
from server.receipts.repository import ReceiptFilter, ReceiptRecord, ReceiptRepository

#: Receipts fetched per query while an export streams; memory is bounded by one page.
PAGE_SIZE = 500

#: Xero's "General Expenses" in its default chart of accounts; what an unmapped category books to.
DEFAULT_ACCOUNT_CODE = "429"
#: Xero's generic purchase tax type; a mapping (or the organisation default) may override it.
DEFAULT_TAX_TYPE = "Tax on Purchases"


def iter_receipts(
    repo: ReceiptRepository, filters: ReceiptFilter, page_size: int = PAGE_SIZE
) -> Iterator[Sequence[ReceiptRecord]]:
    """Pages of the filtered receipts, newest capture first, one query per page.

    Each page is detached from the session before the next is read, so a long export holds at
    most one page of rows in memory, however many receipts it covers.
    """
    after = None
    while True:
        page = repo.list(filters, after=after, limit=page_size)
        if page:
            yield page
        if len(page) < page_size:
            return
        last = page[-1].receipt
        after = (last.captured_at, last.id)
        repo.session.expunge_all()


@dataclass(frozen=True)
class Booking:
    account_code: str
    tax_type: str


@dataclass(frozen=True)
class AccountCodeMap:
    """The effective mapping: per category, else the organisation default, else the built-in."""

    default: Booking
    categories: dict[str, Booking]

    def booking(self, category: str | None) -> Booking:
        if category is None:
            return self.default
        return self.categories.get(normalize_category(category), self.default)


def normalize_category(category: str) -> str:
    return " ".join(category.split()).casefold()


class AccountCodeRepository:
    """The account-code mapping of one organisation; built only through the API dependency."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def rows(self) -> Sequence[AccountCode]:
        q = (
            select(AccountCode)
            .where(AccountCode.organization_id == self.organization_id)
            .order_by(AccountCode.category)
        )
        return self.session.scalars(q).all()

    def mapping(self) -> AccountCodeMap:
        default = Booking(DEFAULT_ACCOUNT_CODE, DEFAULT_TAX_TYPE)
        categories: dict[str, Booking] = {}
        rows = self.rows()
        for row in rows:
            if row.category == "":
                default = Booking(row.account_code, row.tax_type or DEFAULT_TAX_TYPE)
        for row in rows:
            if row.category != "":
                categories[row.category] = Booking(
                    row.account_code, row.tax_type or default.tax_type
                )
        return AccountCodeMap(default, categories)

    def replace(self, rows: Sequence[tuple[str, str, str | None]]) -> None:
        """Replace the whole mapping with (category, account_code, tax_type) rows."""
        self.session.execute(
            delete(AccountCode).where(AccountCode.organization_id == self.organization_id)
        )
        self.session.add_all(
            AccountCode(
                organization_id=self.organization_id,
                category=category,
                account_code=code,
                tax_type=tax_type,
            )
            for category, code, tax_type in rows
        )
        self.session.flush()
