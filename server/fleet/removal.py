"""Removing a scanner from an organisation: cut off, forgotten, its receipts kept.

`remove_device` works in the caller's transaction and only flushes; after the commit the caller
mirrors the registry to the broker (`FleetRuntime.sync_broker`), which drops the device's
account from the password file and reloads Mosquitto, so the scanner is disconnected within
seconds (the same path as revocation), and clears its retained desired configuration.

What goes and what stays:
- gone: the broker account (password hash), desired/reported configuration, commands,
  telemetry history, and the device's unfinished places in rollouts;
- kept, revoked: its client certificates (the CRL must keep listing them until they expire,
  or the certificate would let the scanner in again);
- kept: the `devices` row as a **tombstone** (``removed_at`` set). Receipts and their images
  point at it (``receipts.device_id``, ``receipt_images.device_id``), so they stay readable,
  filterable by scanner and exportable with the scanner's id. Setting those to NULL instead
  would lose which counter a receipt came from, and would need every receipt query to
  outer-join devices. The tombstone keeps its device id reserved to its organisation: the same
  organisation may enrol it again with a new claim code (the row comes back to life); another
  organisation gets ``device_taken``.

One audit entry (``device.removed``) records who removed which scanner and what was deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.accounts.audit import Actor, record_change
from server.db.models import Receipt
from server.fleet.enrolment import EnrolmentError
from server.fleet.models import (
    BrokerAccount,
    DeviceCommand,
    DeviceConfig,
    RolloutDevice,
    TelemetrySample,
)
from server.fleet.repository import RegistryRepository

logger = logging.getLogger(__name__)

#: Rollout places of a removed device that would otherwise hold a wave back forever.
_UNFINISHED = ("pending", "installing")


@dataclass(frozen=True)
class Removed:
    """What removing one device did."""

    device_id: str
    removed_at: dt.datetime
    receipts_kept: int
    deleted: dict[str, int]


def remove_device(
    session: Session,
    device_id: str,
    *,
    organization_id: uuid.UUID,
    actor: Actor,
    now: dt.datetime,
) -> Removed:
    """Remove `device_id` of `organization_id` (404 ``device_not_found`` if it has no such
    live device). The caller commits, then syncs the broker."""
    registry = RegistryRepository(session)
    device = registry.device(device_id, for_update=True)
    if device is None or device.organization_id != organization_id or device.removed_at:
        raise EnrolmentError(
            "device_not_found", f"no device {device_id!r} in your organisation", 404
        )
    before: dict[str, Any] = {
        "device_id": device.device_id,
        "agent_version": device.agent_version,
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
    }
    certificates = registry.revoke_certificates(device.id, now)
    deleted = {
        "broker_accounts": _delete(session, BrokerAccount, BrokerAccount.device_pk == device.id),
        "device_configs": _delete(session, DeviceConfig, DeviceConfig.device_pk == device.id),
        "device_commands": _delete(session, DeviceCommand, DeviceCommand.device_pk == device.id),
        "device_telemetry": _delete(
            session, TelemetrySample, TelemetrySample.device_pk == device.id
        ),
        "rollout_devices": _delete(
            session,
            RolloutDevice,
            (RolloutDevice.device_pk == device.id) & RolloutDevice.status.in_(_UNFINISHED),
        ),
    }
    device.removed_at = now
    device.online = False
    device.telemetry = None
    device.telemetry_at = None
    receipts = int(
        session.scalar(
            select(func.count()).select_from(Receipt).where(Receipt.device_id == device.id)
        )
        or 0
    )
    session.flush()
    record_change(
        session,
        actor=actor,
        organization_id=organization_id,
        action="device.removed",
        entity_type="device",
        entity_id=device.device_id,
        before=before,
        after={
            "removed_at": now.isoformat(),
            "receipts_kept": receipts,
            "certificates_revoked": certificates,
            "deleted": deleted,
        },
        at=now,
    )
    logger.info(
        "device %s removed by %s: %d receipts kept, %d certificates revoked, deleted %s",
        device_id,
        actor.label,
        receipts,
        certificates,
        deleted,
    )
    return Removed(device.device_id, now, receipts, deleted)


def _delete(session: Session, model: Any, where: Any) -> int:
    result = session.execute(
        delete(model).where(where).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
