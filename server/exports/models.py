"""The category -> account-code mapping of an organisation (what exports book receipts to)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import RecordModel


class AccountCode(RecordModel):
    """One mapping row; `category` is case-folded, and "" holds the organisation's default."""

    __tablename__ = "export_account_codes"
    __table_args__ = (UniqueConstraint("organization_id", "category"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    category: Mapped[str] = mapped_column(
        String(100), comment="Case-folded receipt category; '' is the default for unmapped ones."
    )
    account_code: Mapped[str] = mapped_column(String(40))
    tax_type: Mapped[str | None] = mapped_column(
        String(60), default=None, comment="Xero TaxType / QuickBooks tax code; null: default."
    )
