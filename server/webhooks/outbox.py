"""The transactional outbox: events written in the transaction of the change they announce.

Call these from inside the caller's transaction; they only flush. When it commits, the event
and one pending delivery per subscribed endpoint are stored with the change; when it rolls back,
nothing was ever announced. An organisation without a subscribed endpoint costs one query.

Events (the `type` of the body)::

    receipt.created    a new receipt was stored (any source: scanner, upload)
    receipt.corrected  a person corrected fields of a receipt, or approved it after review
    webhook.test       sent on request to one endpoint (`POST /api/v1/webhooks/{id}/test`)

Body: ``{"id", "type", "created_at", "organization_id", "data": {"receipt": {...}, ...}}``.
The id of ``receipt.created`` derives from the receipt id, so a receipt announced twice
(concurrent redelivery) is one event.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.base import utcnow
from server.db.models import Device, Receipt
from server.webhooks.repository import insert_deliveries, insert_events, subscribed_endpoints

RECEIPT_CREATED = "receipt.created"
RECEIPT_CORRECTED = "receipt.corrected"
WEBHOOK_TEST = "webhook.test"
#: What an endpoint can subscribe to.
EVENT_TYPES = (RECEIPT_CREATED, RECEIPT_CORRECTED)

_NAMESPACE = uuid.UUID("9b4c8f3e-2d7a-4e61-9a0b-5f1c3d2e7a10")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def event_body(
    event_id: uuid.UUID,
    event_type: str,
    organization_id: uuid.UUID,
    created_at: dt.datetime,
    data: Mapping[str, Any],
) -> str:
    """The exact JSON text sent (and signed) for an event."""
    return json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "created_at": created_at.isoformat(),
            "organization_id": str(organization_id),
            "data": data,
        },
        default=_json_default,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def receipt_view(values: Mapping[str, Any], device_id: str | None) -> dict[str, Any]:
    """What an event tells of a receipt (like the API's summary; fetch the rest by its URL)."""
    rid = values["id"]
    return {
        "id": str(rid),
        "device_id": device_id,
        "captured_at": values.get("captured_at"),
        "received_at": values.get("received_at"),
        "merchant": values.get("merchant"),
        "date": values.get("receipt_date"),
        "total": values.get("total"),
        "currency": values.get("currency"),
        "needs_review": values.get("needs_review"),
        "held_reason": values.get("held_reason"),
        "source": values.get("source", "scanner"),
        "image_sha256": values.get("image_sha256"),
        "url": f"/api/v1/receipts/{rid}",
    }


def _enqueue(
    session: Session,
    events: Sequence[tuple[uuid.UUID, str, uuid.UUID, dict[str, Any]]],
    endpoints: Mapping[uuid.UUID, Sequence[uuid.UUID]],
) -> int:
    """Write (event id, type, organisation, data) events and their deliveries; returns events."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": event_id,
            "organization_id": org,
            "type": event_type,
            "body": event_body(event_id, event_type, org, now, data),
            "created_at": now,
        }
        for event_id, event_type, org, data in events
        if endpoints.get(org)
    ]
    inserted = insert_events(session, rows)
    insert_deliveries(
        session,
        [
            {
                "organization_id": row["organization_id"],
                "endpoint_id": endpoint_id,
                "event_id": row["id"],
                "next_attempt_at": now,
                "created_at": now,
            }
            for row in rows
            if row["id"] in inserted
            for endpoint_id in endpoints[row["organization_id"]]
        ],
    )
    return len(inserted)


def receipts_created(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Announce newly inserted `receipts` rows (column -> value); returns the events written."""
    subscribed = subscribed_endpoints(
        session, {r["organization_id"] for r in rows}, RECEIPT_CREATED
    )
    rows = [r for r in rows if r["organization_id"] in subscribed]
    if not rows:
        return 0
    devices = {r["device_id"] for r in rows if r.get("device_id")}
    query = select(Device.id, Device.device_id).where(Device.id.in_(devices))
    names: dict[uuid.UUID, str] = dict(session.execute(query).all())
    events = [
        (
            uuid.uuid5(_NAMESPACE, f"{RECEIPT_CREATED}:{r['id']}"),
            RECEIPT_CREATED,
            r["organization_id"],
            {"receipt": receipt_view(r, names.get(r["device_id"]) if r.get("device_id") else None)},
        )
        for r in rows
    ]
    return _enqueue(session, events, subscribed)


def receipts_released(session: Session, receipt_ids: Sequence[uuid.UUID]) -> int:
    """Announce receipts released from a quota hold: for a receiver they are created only now
    (a held receipt sends no event while it is held); returns the events written."""
    if not receipt_ids:
        return 0
    rows = session.execute(select(Receipt.__table__).where(Receipt.id.in_(receipt_ids)))
    return receipts_created(session, [dict(r) for r in rows.mappings()])


def receipt_corrected(
    session: Session,
    receipt: Receipt,
    changes: Mapping[str, tuple[str | None, str | None]],
    *,
    approved: bool,
    corrected_by: uuid.UUID | None,
) -> int:
    """Announce a correction (and/or approval) of `receipt`, whose row holds the new values."""
    subscribed = subscribed_endpoints(session, {receipt.organization_id}, RECEIPT_CORRECTED)
    if not subscribed:
        return 0
    device = session.get(Device, receipt.device_id) if receipt.device_id else None
    values = {
        "id": receipt.id,
        "captured_at": receipt.captured_at,
        "received_at": receipt.received_at,
        "merchant": receipt.merchant,
        "receipt_date": receipt.receipt_date,
        "total": receipt.total,
        "currency": receipt.currency,
        "needs_review": receipt.needs_review,
        "image_sha256": receipt.image_sha256,
        "held_reason": getattr(receipt, "held_reason", None),
        "source": getattr(receipt, "source", "scanner"),
    }
    data = {
        "receipt": receipt_view(values, device.device_id if device else None),
        "changes": {k: {"from": old, "to": new} for k, (old, new) in changes.items()},
        "approved": approved,
        "corrected_by": str(corrected_by) if corrected_by else None,
    }
    event = (uuid.uuid4(), RECEIPT_CORRECTED, receipt.organization_id, data)
    return _enqueue(session, [event], subscribed)


def test_event(session: Session, organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    """Queue a `webhook.test` event for one (active) endpoint; returns the event id."""
    event_id = uuid.uuid4()
    data = {"message": "a test event from Receipt Manager; answer 2xx to acknowledge it"}
    _enqueue(
        session, [(event_id, WEBHOOK_TEST, organization_id, data)], {organization_id: [endpoint_id]}
    )
    return event_id
