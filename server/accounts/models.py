"""Tables of accounts: users, web sessions, invitations, password resets, the audit log and
receipt corrections (what a person changed on a read receipt, kept beside the original)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, RecordModel, utcnow
from server.db.types import JsonDoc

ROLE_CHECK = "role IN ('owner', 'admin', 'member', 'viewer')"


class User(RecordModel):
    """A person who signs in to the dashboard; belongs to one organisation, with one role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True, comment="Lower-cased.")
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200), comment="argon2id, PHC string.")
    disabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A signed-in browser; the cookie holds a random token, only its SHA-256 is stored here."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64), comment="Forms of this session carry it.")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class Invitation(RecordModel):
    """An invitation to join an organisation with a role; the link is signed, used once."""

    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class PasswordReset(RecordModel):
    """A password-reset token issued for a user; `id` is in the signed token, used once."""

    __tablename__ = "password_resets"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AuditEntry(RecordModel):
    """One change: who made it, when, to which entity, and the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_created", "organization_id", "created_at"),
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    actor: Mapped[str] = mapped_column(
        String(200), comment="Who, readable: user e-mail, 'cli', 'system'."
    )
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)


class ReceiptCorrection(RecordModel):
    """A field of a receipt a person corrected; `record` is the `receipt-correction/1` line."""

    __tablename__ = "receipt_corrections"
    __table_args__ = (Index("ix_receipt_corrections_org_created", "organization_id", "created_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    receipt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("receipts.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text, default=None)
    new_value: Mapped[str | None] = mapped_column(Text, default=None)
    corrected_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    record: Mapped[dict[str, Any]] = mapped_column(
        JsonDoc, comment="models.evaluation.corrections format receipt-correction/1."
    )
