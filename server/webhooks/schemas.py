"""What the webhooks API takes and returns (the secret only once, at creation)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

EventType = Literal["receipt.created", "receipt.corrected"]
ALL_EVENTS: tuple[EventType, ...] = ("receipt.created", "receipt.corrected")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http(s) URL that receives the events.")
    events: list[EventType] = Field(
        default_factory=lambda: list(ALL_EVENTS),
        min_length=1,
        description="Event types to send.",
    )
    description: str = Field(default="", max_length=200)
    active: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: list[EventType] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = None


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=e.id,
            url=e.url,
            events=list(e.events),
            description=e.description,
            active=e.active,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signs every request (Receipts-Signature); shown only now.")


class AttemptOut(BaseModel):
    at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(
            at=a.created_at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
        )


class DeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str = Field(description="pending, succeeded or failed.")
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="While pending.")
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    history: list[AttemptOut]

    @classmethod
    def of(cls, d: WebhookDelivery, e: WebhookEvent, attempts: list[WebhookAttempt]) -> DeliveryOut:
        return cls(
            id=d.id,
            event_id=e.id,
            event_type=e.type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            completed_at=d.completed_at,
            history=[AttemptOut.of(a) for a in attempts],
        )


class TestQueued(BaseModel):
    event_id: uuid.UUID
    message: str
