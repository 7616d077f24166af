"""The tables: organisations, their tokens and devices, receipts, images and dead letters.

Query columns of `receipts` (migration 0010): the receipt message (`document`) stays what the
scanner read, but what lists, filters and analytics read is kept as real, indexed columns:
`merchant`, dates, `total`, `currency` (since 0001), `category` and `tax_total`, plus one
`receipt_taxes` row per tax line. They are derived from the message once, when a receipt is
admitted (`server.receipts.derived`, called by `server.receipts.intake.admit_receipts`), and
a saved correction overwrites them (`server.dashboard.corrections`): the columns hold the
corrected values, so no query reads JSON or joins corrections per row. At a million receipts
that is what keeps the list and analytics under 100 ms (`tests/benchmarks/bench_api_scale.py`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, RecordModel, utcnow
from server.db.types import JsonDoc, Money


class Organization(RecordModel):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    plan: Mapped[str] = mapped_column(
        String(16),
        default="starter",
        server_default="starter",
        comment="starter, pro, business or enterprise (server.plans.catalog).",
    )


class ApiToken(RecordModel):
    """A bearer token of an organisation; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # API keys (server.api_keys) are rows of this table too: one bearer mechanism.
    kind: Mapped[str] = mapped_column(
        String(8),
        default="token",
        server_default="token",
        comment="token: issued by the operator (admin create-token); key: made by an owner/admin.",
    )
    scope: Mapped[str] = mapped_column(
        String(16),
        default="read-write",
        server_default="read-write",
        comment="read (GET only) or read-write.",
    )
    prefix: Mapped[str] = mapped_column(
        String(16), default="", server_default="", comment="First characters, to recognise it."
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="Updated at most once a minute."
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    role: Mapped[str] = mapped_column(
        String(16),
        default="admin",
        server_default="admin",
        comment="owner, admin, member or viewer (server.accounts.roles).",
    )


class Device(RecordModel):
    """A scanner registered to an organisation; `device_id` is its MQTT identity."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    online: Mapped[bool] = mapped_column(default=False)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    agent_version: Mapped[str | None] = mapped_column(String(100), default=None)
    model_versions: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    telemetry: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    telemetry_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    removed_at: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="Deleted by its owner: a tombstone kept for its receipts."
    )


class Receipt(Base):
    """One read receipt; `id` is the device's receipt_id, the idempotency key."""

    __tablename__ = "receipts"
    __table_args__ = (
        # The list: newest capture first, keyset-paged on (captured_at, id).
        Index("ix_receipts_org_captured", "organization_id", "captured_at", "id"),
        # One scanner's list (a device belongs to one organisation), and the device's cascade.
        Index("ix_receipts_device_captured", "device_id", "captured_at", "id"),
        # Date filters and analytics; on PostgreSQL it covers what analytics sums and filters
        # on, so a year of an organisation's spend is an index-only scan (no heap reads), and
        # a date range's list page (captured_at, id) is picked from it before reading rows.
        Index(
            "ix_receipts_org_effective_date",
            "organization_id",
            "effective_date",
            postgresql_include=[
                "id",
                "currency",
                "total",
                "tax_total",
                "category",
                "device_id",
                "duplicate_of",
                "held_at",
                "captured_at",  # a date range's page of the list, from the index (0011)
            ],
        ),
        # Monthly quota counts (server.plans.repository.counted_since): admitted this month...
        Index(
            "ix_receipts_org_received",
            "organization_id",
            "received_at",
            postgresql_include=["held_at", "released_at"],
        ),
        # ... or released from a hold this month (few rows: partial).
        Index(
            "ix_receipts_org_released",
            "organization_id",
            "released_at",
            postgresql_where=text("released_at IS NOT NULL"),
            sqlite_where=text("released_at IS NOT NULL"),
        ),
        # Merchant search (`ILIKE '%text%'`): a trigram GIN index on PostgreSQL (pg_trgm);
        # on SQLite a plain index (LIKE scans the organisation's rows there).
        Index(
            "ix_receipts_merchant_search",
            "merchant",
            postgresql_using="gin",
            postgresql_ops={"merchant": "gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"),
        comment="The scanner that read it; null for a photo uploaded from a phone.",
    )
    source: Mapped[str] = mapped_column(
        String(16),
        default="scanner",
        server_default="scanner",
        comment="How it came in: scanner or upload.",
    )
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        default=None,
        comment="The user who uploaded the photo (uploads made with an API token: null).",
    )
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("receipts.id", ondelete="SET NULL"),
        default=None,
        index=True,
        comment="The earlier receipt this one repeats (server/receipts/duplicates.py).",
    )
    not_duplicate: Mapped[bool] = mapped_column(
        default=False,
        server_default=false(),
        comment="A person said it is no duplicate: never flagged again.",
    )
    captured_at: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    merchant: Mapped[str | None] = mapped_column(String(500), default=None)
    receipt_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    effective_date: Mapped[dt.date] = mapped_column(
        Date, comment="The printed date, else the capture date (UTC); what date filters use."
    )
    total: Mapped[Decimal | None] = mapped_column(Money(), default=None)
    currency: Mapped[str | None] = mapped_column(String(8), default=None)
    category: Mapped[str | None] = mapped_column(
        String(500),
        default=None,
        comment="The category read, or its latest correction (server.receipts.derived).",
    )
    tax_total: Mapped[Decimal | None] = mapped_column(
        Money(),
        default=None,
        comment="Sum of the tax lines read; null: none read (rows in receipt_taxes).",
    )
    needs_review: Mapped[bool] = mapped_column(default=False)
    image_sha256: Mapped[str | None] = mapped_column(
        String(64), default=None, comment="Digest the receipt message announced, if any."
    )
    document: Mapped[dict[str, Any]] = mapped_column(JsonDoc, comment="The receipt message.")
    held_reason: Mapped[str | None] = mapped_column(
        String(40),
        default=None,
        comment="Why it is held (monthly_quota); null: it counts (server/plans/quota.py).",
    )
    held_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)
    released_at: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="When a hold ended; the release counts against that month."
    )


class ReceiptTax(Base):
    """One tax line of a receipt as read (label, rate, amount): tax totals per rate are summed
    in SQL from these rows (`server.analytics.repository`), not from the JSON message."""

    __tablename__ = "receipt_taxes"

    receipt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("receipts.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(
        Integer, primary_key=True, comment="Index of the line in the message's taxes."
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(100), default=None)
    rate: Mapped[Decimal | None] = mapped_column(
        Money(), default=None, comment="Percent, without trailing zeros (20, 5.5)."
    )
    amount: Mapped[Decimal] = mapped_column(Money())


class ReceiptImage(Base):
    """The image of a receipt, keyed by receipt id so it links whichever arrives first."""

    __tablename__ = "receipt_images"

    receipt_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), comment="Null for an uploaded photo."
    )
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    dhash: Mapped[int | None] = mapped_column(
        BigInteger,
        default=None,
        comment="64-bit difference hash (signed) for duplicate detection; null if undecodable.",
    )
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeadLetter(RecordModel):
    """A message that was refused, kept with a stable code and the reason."""

    __tablename__ = "dead_letters"

    topic: Mapped[str] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary, comment="Truncated to a bound.")
    payload_size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
