"""Handling one batch of messages inside the caller's transaction (the caller commits)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from models.protocol import DeliveryAck, ProtocolError, parse_topic
from server.fleet.reports import DEFAULT_HISTORY, record_reports
from server.images.base import ImageStore
from server.ingest.acks import delivery_acks
from server.ingest.interpret import (
    CONFLICTING_RECEIPT_ID,
    ImageArrived,
    Incoming,
    Outcome,
    ReceiptRow,
    Refused,
    StatusSeen,
    TelemetrySeen,
    interpret,
)
from server.ingest.repository import IngestRepository
from server.receipts.duplicates import flag_duplicates, image_dhash
from server.receipts.intake import admit_receipts

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one batch did; `refused` lists the dead letters written."""

    receipts: int = 0
    duplicates: int = 0
    images: int = 0
    statuses: int = 0
    telemetry: int = 0
    configs: int = 0
    command_results: int = 0
    refused: list[Refused] = field(default_factory=list)
    captured: list[dt.datetime] = field(default_factory=list)  # of the receipts stored
    acks: dict[str, DeliveryAck] = field(default_factory=dict)  # per device, sent after commit


def ingest_batch(
    session: Session,
    store: ImageStore,
    batch: Sequence[Incoming],
    payload_limit: int,
    telemetry_history: int = DEFAULT_HISTORY,
) -> BatchResult:
    """Write every message of `batch` (images to `store`); flushes, never commits."""
    repo = IngestRepository(session)
    devices = repo.devices(_device_ids(batch))
    outcomes = [interpret(msg, devices) for msg in batch]
    outcomes, known = _refuse_foreign_ids(repo, batch, outcomes)
    result = BatchResult()

    receipts: dict[Any, dict[str, Any]] = {}
    images: dict[Any, dict[str, Any]] = {}
    for o in outcomes:
        if isinstance(o, ReceiptRow):
            if o.receipt_id in known or o.receipt_id in receipts:
                result.duplicates += 1
                logger.info(
                    "duplicate receipt %s from %s ignored", o.receipt_id, o.device.device_id
                )
                continue
            receipts[o.receipt_id] = _receipt_values(o)
            result.captured.append(o.captured_at)
        elif isinstance(o, ImageArrived):
            sha256 = store.put(o.data)
            images.setdefault(
                o.receipt_id,
                {
                    "receipt_id": o.receipt_id,
                    "organization_id": o.device.organization_id,
                    "device_id": o.device.pk,
                    "sha256": sha256,
                    "content_type": o.content_type,
                    "size_bytes": len(o.data),
                    "received_at": o.received_at,
                    "dhash": image_dhash(o.data),
                },
            )
        elif isinstance(o, StatusSeen):
            values: dict[str, Any] = {"online": o.online}
            if o.online:
                values["agent_version"] = o.agent_version
                values["model_versions"] = o.model_versions
            repo.update_device(o.device.pk, seen_at=o.received_at, **values)
            result.statuses += 1
        elif isinstance(o, TelemetrySeen):
            repo.update_device(
                o.device.pk, seen_at=o.received_at, telemetry=o.snapshot, telemetry_at=o.received_at
            )
            result.telemetry += 1
        elif isinstance(o, Refused):  # config reports and command results: record_reports
            result.refused.append(o)
    fleet = record_reports(session, outcomes, telemetry_history)
    result.configs, result.command_results = fleet.configs, fleet.command_results
    result.refused += fleet.refused
    admit_receipts(session, list(receipts.values()))
    repo.insert_images(list(images.values()))
    flag_duplicates(session, images)  # an image arriving after its receipt completes the check
    repo.insert_dead_letters(
        [
            {
                "topic": r.topic,
                "device_id": r.device_id,
                "code": r.code,
                "reason": r.reason,
                "payload": r.payload[:payload_limit],
                "payload_size": len(r.payload),
                "received_at": r.received_at,
            }
            for r in result.refused
        ]
    )
    session.flush()
    result.receipts = len(receipts)
    result.images = len(images)
    result.acks = delivery_acks(outcomes, result.refused)
    return result


def _device_ids(batch: Sequence[Incoming]) -> set[str]:
    ids = set()
    for msg in batch:
        with contextlib.suppress(ProtocolError):
            ids.add(parse_topic(msg.topic).device_id)
    return ids


def _refuse_foreign_ids(
    repo: IngestRepository, batch: Sequence[Incoming], outcomes: list[Outcome]
) -> tuple[list[Outcome], set[uuid.UUID]]:
    """Refuse a receipt or image whose id is another device's; also the ids already stored."""
    ids = {o.receipt_id for o in outcomes if isinstance(o, ReceiptRow | ImageArrived)}
    stored = repo.receipt_devices(ids)
    owners = dict(stored)
    for receipt_id, device_pk in repo.image_devices(ids).items():
        owners.setdefault(receipt_id, device_pk)
    checked: list[Outcome] = []
    for msg, o in zip(batch, outcomes, strict=True):
        if isinstance(o, ReceiptRow | ImageArrived):
            owner = owners.setdefault(o.receipt_id, o.device.pk)
            if owner != o.device.pk:
                reason = (
                    f"receipt id {o.receipt_id} already belongs to another device; "
                    "a device must generate fresh UUIDs"
                )
                refused = Refused(
                    msg.topic,
                    o.device.device_id,
                    CONFLICTING_RECEIPT_ID,
                    reason,
                    msg.payload,
                    msg.received_at,
                )
                checked.append(refused)
                continue
        checked.append(o)
    return checked, set(stored)


def _receipt_values(o: ReceiptRow) -> dict[str, Any]:
    return {
        "id": o.receipt_id,
        "organization_id": o.device.organization_id,
        "device_id": o.device.pk,
        "captured_at": o.captured_at,
        "received_at": o.received_at,
        "merchant": o.merchant,
        "receipt_date": o.receipt_date,
        "effective_date": o.effective_date,
        "total": o.total,
        "currency": o.currency,
        "needs_review": o.needs_review,
        "image_sha256": o.image_sha256,
        "document": o.document,
    }
