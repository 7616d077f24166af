"""Database access of releases and staged rollouts (`server.fleet.rollouts`), one organisation.

Beside `server.fleet.repository` for size; the same rules: scoped by `organization_id`
except the two lookups named `*_any` (the artifact link and the periodic tick act across
organisations), and the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db.models import Device, Receipt
from server.fleet.models import DeviceCommand, Release, Rollout, RolloutDevice

#: States in which `advance` still has work to do.
ACTIVE = ("pending", "running")


@dataclass(frozen=True)
class Member:
    """A device of a rollout with its device id and its install command (if sent)."""

    row: RolloutDevice
    device_id: str
    command: DeviceCommand | None


class RolloutRepository:
    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def add(self, row: Any) -> None:
        self.session.add(row)
        self.session.flush()

    def release(self, release_id: uuid.UUID) -> Release | None:
        return self.session.scalar(
            select(Release).where(
                Release.id == release_id, Release.organization_id == self.organization_id
            )
        )

    def release_named(self, name: str) -> Release | None:
        return self.session.scalar(
            select(Release).where(
                Release.name == name, Release.organization_id == self.organization_id
            )
        )

    def releases(self) -> Sequence[Release]:
        return self.session.scalars(
            select(Release)
            .where(Release.organization_id == self.organization_id)
            .order_by(Release.created_at.desc(), Release.id)
        ).all()

    def rollout(self, rollout_id: uuid.UUID, *, for_update: bool = False) -> Rollout | None:
        q = select(Rollout).where(
            Rollout.id == rollout_id, Rollout.organization_id == self.organization_id
        )
        if for_update:
            q = q.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(q)

    def rollouts(self) -> Sequence[Rollout]:
        return self.session.scalars(
            select(Rollout)
            .where(Rollout.organization_id == self.organization_id)
            .order_by(Rollout.created_at.desc(), Rollout.id)
        ).all()

    def members(self, rollout: Rollout) -> list[Member]:
        rows = self.session.execute(
            select(RolloutDevice, Device.device_id, DeviceCommand)
            .join(Device, Device.id == RolloutDevice.device_pk)
            .outerjoin(DeviceCommand, DeviceCommand.id == RolloutDevice.command_id)
            .where(RolloutDevice.rollout_id == rollout.id)
            .order_by(RolloutDevice.wave, Device.device_id)
        )
        return [Member(r, d, c) for r, d, c in rows]

    def receipts(
        self, device_pks: Sequence[uuid.UUID], since: dt.datetime
    ) -> list[tuple[uuid.UUID, dt.datetime, dict[str, Any], bool]]:
        """(device, captured_at, document, needs_review) of the devices' receipts since `since`."""
        if not device_pks:
            return []
        rows = self.session.execute(
            select(
                Receipt.device_id, Receipt.captured_at, Receipt.document, Receipt.needs_review
            ).where(
                Receipt.organization_id == self.organization_id,
                Receipt.device_id.in_(device_pks),
                Receipt.captured_at >= since,
            )
        )
        return [(d, at, doc, bool(nr)) for d, at, doc, nr in rows]


def release_any(session: Session, release_id: uuid.UUID) -> Release | None:
    """A release of any organisation (the artifact link's signature names it)."""
    return session.get(Release, release_id)


def active_rollouts_any(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(organisation, rollout) of every pending or running rollout, oldest first."""
    rows = session.execute(
        select(Rollout.organization_id, Rollout.id)
        .where(Rollout.state.in_(ACTIVE))
        .order_by(Rollout.created_at)
    )
    return [(o, r) for o, r in rows]


def rollout_gauges(session: Session) -> tuple[list[tuple[uuid.UUID, str]], list[Any]]:
    """Each rollout's state, and device counts per (rollout, status): for the metrics."""
    states = [(i, s) for i, s in session.execute(select(Rollout.id, Rollout.state))]
    counts = list(
        session.execute(
            select(RolloutDevice.rollout_id, RolloutDevice.status, func.count()).group_by(
                RolloutDevice.rollout_id, RolloutDevice.status
            )
        )
    )
    return states, counts
