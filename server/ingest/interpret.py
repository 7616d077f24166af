"""Message -> what to write: the pure core of ingest (no broker, no database, no clock).

`interpret` turns one MQTT message into exactly one outcome: a receipt row, an image to store,
a device status or telemetry update, or a refusal with a stable code and a human reason.
It never raises for bad input: every refusal is an outcome, so nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from PIL import Image, UnidentifiedImageError

from models.protocol import (
    CommandResult,
    ConfigReported,
    ProtocolError,
    ReceiptMessage,
    StatusMessage,
    Telemetry,
    decode,
    parse_topic,
    size_limit,
)


@dataclass(frozen=True)
class Incoming:
    """One message as the broker delivered it."""

    topic: str
    payload: bytes
    received_at: dt.datetime
    qos: int = 1
    mid: int = 0
    generation: int = 0  # which connection delivered it; acks go only on that one


@dataclass(frozen=True)
class DeviceRef:
    """What ingest needs of a registered device."""

    pk: uuid.UUID
    device_id: str
    organization_id: uuid.UUID


@dataclass(frozen=True)
class ReceiptRow:
    receipt_id: uuid.UUID
    device: DeviceRef
    captured_at: dt.datetime
    received_at: dt.datetime
    merchant: str | None
    receipt_date: dt.date | None
    effective_date: dt.date
    total: Decimal | None
    currency: str | None
    needs_review: bool
    image_sha256: str | None
    document: dict[str, Any]


@dataclass(frozen=True)
class ImageArrived:
    receipt_id: uuid.UUID
    device: DeviceRef
    data: bytes
    content_type: str
    received_at: dt.datetime


@dataclass(frozen=True)
class StatusSeen:
    device: DeviceRef
    online: bool
    received_at: dt.datetime
    agent_version: str | None
    model_versions: dict[str, str]


@dataclass(frozen=True)
class TelemetrySeen:
    device: DeviceRef
    snapshot: dict[str, Any]
    received_at: dt.datetime


@dataclass(frozen=True)
class ConfigReportedSeen:
    device: DeviceRef
    report: ConfigReported
    received_at: dt.datetime


@dataclass(frozen=True)
class CommandResultSeen:
    device: DeviceRef
    result: CommandResult
    received_at: dt.datetime
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Refused:
    topic: str
    device_id: str | None
    code: str
    reason: str
    payload: bytes
    received_at: dt.datetime


Outcome = (
    ReceiptRow
    | ImageArrived
    | StatusSeen
    | TelemetrySeen
    | ConfigReportedSeen
    | CommandResultSeen
    | Refused
)

#: Codes of refusals added by ingest to those of `models.protocol.ProtocolError`.
UNKNOWN_DEVICE = "unknown_device"
INVALID_IMAGE = "invalid_image"
UNSUPPORTED_TOPIC = "unsupported_topic"
CONFLICTING_RECEIPT_ID = "conflicting_receipt_id"
UNKNOWN_COMMAND = "unknown_command"


def interpret(msg: Incoming, devices: Mapping[str, DeviceRef]) -> Outcome:
    """What `msg` means, given the registered `devices` (by device id)."""
    try:
        parts = parse_topic(msg.topic)
    except ProtocolError as exc:
        return _refuse(msg, None, exc.code, exc.message)
    device = devices.get(parts.device_id)
    if device is None:
        return _refuse(
            msg,
            parts.device_id,
            UNKNOWN_DEVICE,
            f"device {parts.device_id!r} is not registered; register it with "
            f"'receipts admin add-device ORG {parts.device_id}'",
        )
    try:
        outcome = _decode(msg, device, parts.kind, parts.ident)
    except ProtocolError as exc:
        return _refuse(msg, device.device_id, exc.code, exc.message)
    if outcome is None:
        reason = f"ingest does not handle {parts.kind!r} messages"
        return _refuse(msg, device.device_id, UNSUPPORTED_TOPIC, reason)
    return outcome


def _decode(msg: Incoming, device: DeviceRef, kind: str, ident: str | None) -> Outcome | None:
    match kind:
        case "receipt":
            return _receipt(msg, device)
        case "image":
            return _image(msg, device, ident or "")
        case "status":
            status = decode(StatusMessage, msg.payload, limit=size_limit("status"))
            return StatusSeen(
                device,
                status.state == "online",
                msg.received_at,
                status.agent_version,
                dict(status.model_versions),
            )
        case "telemetry":
            telemetry = decode(Telemetry, msg.payload, limit=size_limit("telemetry"))
            snapshot = telemetry.model_dump(mode="json", by_alias=True)
            return TelemetrySeen(device, snapshot, msg.received_at)
        case "config/reported" | "cmd_result":
            return _fleet_report(msg, device, kind, ident)
    return None


def _fleet_report(
    msg: Incoming, device: DeviceRef, kind: str, ident: str | None
) -> ConfigReportedSeen | CommandResultSeen:
    if kind == "config/reported":
        report = decode(ConfigReported, msg.payload, limit=size_limit(kind))
        return ConfigReportedSeen(device, report, msg.received_at)
    result = decode(CommandResult, msg.payload, limit=size_limit(kind))
    if str(result.command_id) != ident:
        raise ProtocolError(
            "invalid_payload", f"command_id {result.command_id} differs from the topic's {ident!r}"
        )
    return CommandResultSeen(device, result, msg.received_at, msg.topic, msg.payload)


def _receipt(msg: Incoming, device: DeviceRef) -> ReceiptRow:
    m = decode(ReceiptMessage, msg.payload, limit=size_limit("receipt"))
    f = m.receipt.fields
    receipt_date = f.date.value if f.date else None
    return ReceiptRow(
        receipt_id=m.receipt_id,
        device=device,
        captured_at=m.captured_at,
        received_at=msg.received_at,
        merchant=f.merchant.value[:500] if f.merchant else None,
        receipt_date=receipt_date,
        effective_date=receipt_date or m.captured_at.astimezone(dt.UTC).date(),
        total=f.total.value if f.total else None,
        currency=f.currency.value[:8] if f.currency else None,
        needs_review=m.receipt.needs_review,
        image_sha256=m.image.sha256 if m.image else None,
        document=m.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def sniff_image_type(data: bytes) -> str | None:
    """The content type of JPEG/PNG/WebP bytes, from their signature."""
    for magic, content_type in _MAGIC.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image(msg: Incoming, device: DeviceRef, ident: str) -> ImageArrived:
    try:
        receipt_id = uuid.UUID(ident)
    except ValueError as exc:
        raise ProtocolError("bad_topic", f"image topic id {ident!r} is not a UUID") from exc
    limit = size_limit("image")
    if len(msg.payload) > limit:
        raise ProtocolError("too_large", f"image of {len(msg.payload)} bytes exceeds {limit} bytes")
    content_type = sniff_image_type(msg.payload)
    if content_type is None:
        raise ProtocolError(INVALID_IMAGE, "payload is not a JPEG, PNG or WebP image")
    try:
        with Image.open(io.BytesIO(msg.payload)) as img:
            img.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ProtocolError(INVALID_IMAGE, f"{content_type} image does not decode: {exc}") from exc
    return ImageArrived(receipt_id, device, msg.payload, content_type, msg.received_at)


def _refuse(msg: Incoming, device_id: str | None, code: str, reason: str) -> Refused:
    return Refused(msg.topic, device_id, code, reason, msg.payload, msg.received_at)
