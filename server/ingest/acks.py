"""End-to-end delivery acks: what a committed batch tells each scanner's outbox it may forget.

After its transaction commits, the worker publishes one `models.protocol.DeliveryAck` per device
on ``rm/v1/dev/{id}/ack``: receipts stored (or already stored: a duplicate is delivered too),
images stored, and messages refused for good with their code. Messages from unknown devices are
not acknowledged: the scanner keeps them and sends them again, so they arrive once the device is
registered. See models/protocol.py for why the outbox waits for this and not for the broker.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.protocol import DeliveryAck, ProtocolError, RefusedDelivery, parse_topic
from server.ingest.interpret import UNKNOWN_DEVICE, ImageArrived, Outcome, ReceiptRow, Refused

_REASON_LIMIT = 300


@dataclass
class _Parts:
    receipts: dict[uuid.UUID, None] = field(default_factory=dict)  # ordered sets
    images: dict[uuid.UUID, None] = field(default_factory=dict)
    refused: list[RefusedDelivery] = field(default_factory=list)


def delivery_acks(
    outcomes: Sequence[Outcome], refused: Sequence[Refused]
) -> dict[str, DeliveryAck]:
    """The ack each device gets for one committed batch, keyed by device id."""
    parts: dict[str, _Parts] = {}
    for o in outcomes:
        if isinstance(o, ReceiptRow):
            parts.setdefault(o.device.device_id, _Parts()).receipts[o.receipt_id] = None
        elif isinstance(o, ImageArrived):
            parts.setdefault(o.device.device_id, _Parts()).images[o.receipt_id] = None
    for r in refused:
        ref = _refused_delivery(r)
        if ref is not None and r.device_id is not None:
            parts.setdefault(r.device_id, _Parts()).refused.append(ref)
    return {
        device_id: DeliveryAck(receipts=list(p.receipts), images=list(p.images), refused=p.refused)
        for device_id, p in parts.items()
    }


def _refused_delivery(r: Refused) -> RefusedDelivery | None:
    """The receipt id a refused receipt or image message was about, if it can be told."""
    if r.device_id is None or r.code == UNKNOWN_DEVICE:
        return None
    try:
        topic = parse_topic(r.topic)
    except ProtocolError:
        return None
    raw: object = None
    if topic.kind == "image":
        raw = topic.ident
    elif topic.kind == "receipt":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            data = json.loads(r.payload)
            raw = data.get("receipt_id") if isinstance(data, dict) else None
    else:
        return None
    try:
        receipt_id = uuid.UUID(str(raw))
    except ValueError:
        return None  # nothing to name: the device's own retry limit deals with it
    return RefusedDelivery(
        receipt_id=receipt_id, kind=topic.kind, code=r.code, reason=r.reason[:_REASON_LIMIT]
    )
