"""Tables of webhooks: endpoints an organisation registered, the event outbox, deliveries and
their attempts.

An event row and one delivery row per subscribed endpoint are written in the transaction that
made the change (the transactional outbox): a rolled-back receipt never produces an event, a
committed one always does. The delivery worker (`server.webhooks.worker`) sends what is due.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import models as _core  # noqa: F401  (organizations, referred to)
from server.db.base import Base, RecordModel, utcnow
from server.db.types import JsonDoc

#: Delivery states: waiting (or leased by a worker), sent with a 2xx, given up.
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


class WebhookEndpoint(RecordModel):
    """A URL of an organisation that receives signed events; `secret` signs them."""

    __tablename__ = "webhook_endpoints"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[Any]] = mapped_column(JsonDoc, comment="Event types it subscribes to.")
    secret: Mapped[str] = mapped_column(
        String(100), comment="HMAC key (whsec_...); the server must know it to sign."
    )
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookEvent(Base):
    """One event; `body` is the exact JSON sent (signed as is, the same on every retry)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_org_created", "organization_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, comment="The event id receivers see.")
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookDelivery(RecordModel):
    """One event to one endpoint: its state, attempts so far and when the next one is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    leased_until: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="A worker is sending it until then (a crashed one's lease expires)."
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WebhookAttempt(RecordModel):
    """One HTTP attempt of a delivery: the answer's status code or the error, and how long."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
