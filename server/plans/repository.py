"""Database access of plans and quotas (the only SQLAlchemy of this package)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.db.models import Organization, Receipt


class PlanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def plans(self, organization_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = set(organization_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(Organization.id, Organization.plan).where(Organization.id.in_(ids))
        )
        return {r.id: r.plan for r in rows}

    def lock_organization(self, organization_id: uuid.UUID) -> Organization | None:
        """The organisation row, locked until the transaction ends (PostgreSQL: FOR UPDATE), so
        quota decisions of one organisation happen one at a time across processes. SQLite
        serialises writers anyway."""
        return self.session.scalar(
            select(Organization)
            .where(Organization.id == organization_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def counted_since(self, organization_id: uuid.UUID, since: dt.datetime) -> int:
        """Receipts that count against the quota from `since` on: not held, and admitted (or
        released from a hold) at or after it."""
        # coalesce(released_at, received_at) >= since, written so that each branch is a range
        # of an index: ix_receipts_org_received (covering held_at, released_at) for receipts
        # admitted since, the partial ix_receipts_org_released for those released since.
        admitted = (
            select(func.count())
            .select_from(Receipt)
            .where(
                Receipt.organization_id == organization_id,
                Receipt.received_at >= since,
                Receipt.released_at.is_(None),
                Receipt.held_at.is_(None),
            )
        )
        released = (
            select(func.count())
            .select_from(Receipt)
            .where(
                Receipt.organization_id == organization_id,
                Receipt.released_at >= since,
                Receipt.held_at.is_(None),
            )
        )
        both = select(admitted.scalar_subquery() + released.scalar_subquery())
        return int(self.session.scalar(both) or 0)

    def stored_ids(self, receipt_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        ids = set(receipt_ids)
        if not ids:
            return set()
        return set(self.session.scalars(select(Receipt.id).where(Receipt.id.in_(ids))))

    def held(self, organization_id: uuid.UUID, limit: int | None) -> Sequence[uuid.UUID]:
        """Held receipts of the organisation in capture order (the order they are released in)."""
        q = (
            select(Receipt.id)
            .where(Receipt.organization_id == organization_id, Receipt.held_at.is_not(None))
            .order_by(Receipt.captured_at, Receipt.id)
        )
        if limit is not None:
            q = q.limit(limit)
        return self.session.scalars(q).all()

    def count_held(self, organization_id: uuid.UUID) -> int:
        q = (
            select(func.count())
            .select_from(Receipt)
            .where(Receipt.organization_id == organization_id, Receipt.held_at.is_not(None))
        )
        return int(self.session.scalar(q) or 0)

    def release(self, receipt_ids: Sequence[uuid.UUID], at: dt.datetime) -> None:
        if receipt_ids:
            self.session.execute(
                update(Receipt)
                .where(Receipt.id.in_(receipt_ids))
                .values(held_reason=None, held_at=None, released_at=at),
                execution_options={"synchronize_session": False},
            )

    def organizations_with_held(self) -> Sequence[uuid.UUID]:
        return self.session.scalars(
            select(Receipt.organization_id).where(Receipt.held_at.is_not(None)).distinct()
        ).all()
