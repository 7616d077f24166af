"""Deleting an organisation: every row it has, its images, its devices' broker access.

`delete_organization` runs in three steps:

1. One transaction: lock the organisation's row, count what it has in every table
   (`tables.scoped_tables`), delete its dead letters and then the organisation row, which
   removes every other row through ``ON DELETE CASCADE`` (devices, their broker accounts and
   certificates, receipts, images' rows, corrections, users, sessions, tokens, audit log,
   webhooks...), and write an `OrganizationDeletion` record, which lives outside the
   organisation (no foreign key, no name, no e-mail). If any row survived, it rolls back.
2. After the commit: mirror the registry to the broker (`FleetRuntime.sync_broker`), so the
   deleted devices' accounts leave the password file and the broker is reloaded at once.
3. Delete from the image store the images (receipt images and uploaded photos) that no other
   organisation's receipt or upload refers to (images are stored once per SHA-256, so two
   organisations may share one). Each is checked again just
   before it is deleted.

A crash between 2 and 3 leaves unreferenced image files behind (never a row pointing at a
missing file). The certificates of the deleted devices leave the CRL with their rows; the broker
still refuses them, because it also needs the password, which is gone.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from server.datarights.models import OrganizationDeletion
from server.datarights.tables import scoped_tables
from server.db.models import Device, Organization, ReceiptImage
from server.fleet.runtime import FleetRuntime
from server.images.base import ImageStore
from server.uploads.models import Upload

logger = logging.getLogger(__name__)


class DeletionError(RuntimeError):
    """The organisation could not be deleted; nothing was (the transaction rolled back)."""


@dataclass
class DeletionReport:
    organization_id: uuid.UUID
    counts: dict[str, int] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    images_deleted: int = 0
    images_shared: int = 0
    broker_synced: bool = False


def _counts(session: Session, org: uuid.UUID) -> dict[str, int]:
    out = {}
    for scoped in scoped_tables():
        n = session.scalar(select(func.count()).select_from(scoped.table).where(scoped.where(org)))
        if n:
            out[scoped.table.name] = int(n)
    return out


def delete_organization(
    sessions: sessionmaker[Session],
    store: ImageStore,
    organization_id: uuid.UUID,
    *,
    requested_by: str,
    fleet: FleetRuntime | None = None,
) -> DeletionReport:
    """Delete the organisation and everything of it (see the module docstring)."""
    report = DeletionReport(organization_id)
    with sessions.begin() as session:
        org = session.scalar(
            select(Organization).where(Organization.id == organization_id).with_for_update()
        )
        if org is None:
            raise DeletionError(f"no organisation {organization_id}")
        report.devices = list(
            session.scalars(select(Device.device_id).where(Device.organization_id == org.id))
        )
        digests = set(
            session.scalars(
                select(ReceiptImage.sha256).where(ReceiptImage.organization_id == org.id)
            )
        ) | set(session.scalars(select(Upload.sha256).where(Upload.organization_id == org.id)))
        report.counts = _counts(session, org.id)
        for scoped in scoped_tables():
            if scoped.table.name == "dead_letters":
                session.execute(delete(scoped.table).where(scoped.where(org.id)))
        session.execute(delete(Organization).where(Organization.id == org.id))
        session.expunge_all()
        left = _counts(session, organization_id)
        if left:
            raise DeletionError(f"rows of the organisation survived the delete: {left}")
        session.add(
            OrganizationDeletion(
                organization_id=organization_id,
                requested_by=requested_by[:200],
                counts=report.counts,
            )
        )
    if fleet is not None:
        report.broker_synced = fleet.sync_broker()
    for sha256 in sorted(digests):
        with sessions() as session:
            shared = session.scalar(
                select(func.count()).select_from(ReceiptImage).where(ReceiptImage.sha256 == sha256)
            ) or session.scalar(
                select(func.count()).select_from(Upload).where(Upload.sha256 == sha256)
            )
        if shared:
            report.images_shared += 1
        elif store.delete(sha256):
            report.images_deleted += 1
    with sessions.begin() as session:
        record = session.scalar(
            select(OrganizationDeletion)
            .where(OrganizationDeletion.organization_id == organization_id)
            .order_by(OrganizationDeletion.created_at.desc())
        )
        if record is not None:
            record.images_deleted = report.images_deleted
    logger.warning(
        "organisation %s deleted by %s: %d rows in %d tables, %d devices, %d images deleted "
        "(%d shared with other organisations kept), broker %s",
        organization_id,
        requested_by,
        sum(report.counts.values()),
        len(report.counts),
        len(report.devices),
        report.images_deleted,
        report.images_shared,
        "synced" if report.broker_synced else "not synced (no broker auth configured)",
    )
    return report
