"""Database access of webhooks (the only SQLAlchemy of this package).

`WebhookRepository` is bound to ONE organisation (endpoints, their deliveries); `DeliveryQueue`
is the worker's cross-organisation view: claim due deliveries, record attempts, count backlog.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.webhooks.models import (
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


class WebhookRepository:
    """Endpoints and deliveries of one organisation; every query is scoped by it."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def endpoints(self) -> Sequence[WebhookEndpoint]:
        return self.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == self.organization_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        ).all()

    def count(self) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(WebhookEndpoint.organization_id == self.organization_id)
            )
            or 0
        )

    def endpoint(
        self, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        q = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.organization_id == self.organization_id,
        )
        if for_update:
            q = q.with_for_update()
        return self.session.scalar(q)

    def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        endpoint.organization_id = self.organization_id
        self.session.add(endpoint)
        self.session.flush()
        return endpoint

    def delete(self, endpoint: WebhookEndpoint) -> None:
        self.session.delete(endpoint)
        self.session.flush()

    def deliveries(
        self, endpoint_id: uuid.UUID, limit: int
    ) -> Sequence[tuple[WebhookDelivery, WebhookEvent]]:
        """The endpoint's latest deliveries with their events, newest first."""
        rows = self.session.execute(
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.organization_id == self.organization_id,
                WebhookDelivery.endpoint_id == endpoint_id,
            )
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        return [(d, e) for d, e in rows]

    def attempts(self, delivery_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[WebhookAttempt]]:
        ids = list(delivery_ids)
        out: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in ids}
        if not ids:
            return out
        for a in self.session.scalars(
            select(WebhookAttempt)
            .where(
                WebhookAttempt.organization_id == self.organization_id,
                WebhookAttempt.delivery_id.in_(ids),
            )
            .order_by(WebhookAttempt.created_at, WebhookAttempt.id)
        ):
            out[a.delivery_id].append(a)
        return out


def subscribed_endpoints(
    session: Session, organization_ids: Iterable[uuid.UUID], event_type: str
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Active endpoints subscribed to `event_type`, by organisation (orgs without any left out)."""
    ids = set(organization_ids)
    if not ids:
        return {}
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.organization_id, WebhookEndpoint.events).where(
            WebhookEndpoint.organization_id.in_(ids), WebhookEndpoint.active.is_(True)
        )
    )
    for endpoint_id, org_id, events in rows:
        if event_type in (events or []):
            out.setdefault(org_id, []).append(endpoint_id)
    return out


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert events, skipping ids already stored (a redelivered receipt); the ids inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(WebhookEvent)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(WebhookEvent.id)
    )
    return set(session.scalars(stmt))


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.add_all(WebhookDelivery(**row) for row in rows)
        session.flush()


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds until `leased_until`, with what it needs to send it."""

    delivery_id: uuid.UUID
    organization_id: uuid.UUID
    attempt: int
    leased_until: dt.datetime
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: str


class DeliveryQueue:
    """The delivery worker's queue over every organisation."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, now: dt.datetime, leased_until: dt.datetime, limit: int) -> list[Claimed]:
        """Lease up to `limit` due deliveries of active endpoints; oldest due first.

        One UPDATE over a sub-select: on PostgreSQL the sub-select locks with SKIP LOCKED, so
        two workers never claim the same row and never wait on each other; on SQLite the
        statement runs under the database's write lock (one worker is the recommended setup).
        """
        due = (
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
                WebhookEndpoint.active.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(of=WebhookDelivery, skip_locked=True)
        ids = list(
            self.session.scalars(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due.scalar_subquery()))
                .values(leased_until=leased_until)
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        if not ids:
            return []
        rows = self.session.execute(
            select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret, WebhookEvent)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.next_attempt_at)
        )
        return [
            Claimed(
                d.id,
                d.organization_id,
                d.attempts + 1,
                leased_until,
                url,
                secret,
                e.id,
                e.type,
                e.body,
            )
            for d, url, secret, e in rows
        ]

    def record(
        self,
        claimed: Claimed,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: dt.datetime | None,
        now: dt.datetime,
    ) -> str:
        """Write the attempt and the delivery's new state; returns succeeded, pending or failed.

        `next_attempt_at` None after a failure means: give up. The delivery is updated only
        while this worker still holds its lease (it may have expired and passed to another).
        """
        ok = error is None and status_code is not None and 200 <= status_code < 300
        state = SUCCEEDED if ok else (PENDING if next_attempt_at is not None else FAILED)
        self.session.add(
            WebhookAttempt(
                delivery_id=claimed.delivery_id,
                organization_id=claimed.organization_id,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                created_at=now,
            )
        )
        values: dict[str, Any] = {
            "status": state,
            "attempts": claimed.attempt,
            "leased_until": None,
            "last_status_code": status_code,
            "last_error": error,
        }
        if state == PENDING:
            values["next_attempt_at"] = next_attempt_at
        else:
            values["completed_at"] = now
        self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claimed.delivery_id,
                WebhookDelivery.leased_until == claimed.leased_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self.session.flush()
        return state

    def pending(self) -> int:
        """Deliveries waiting to be sent (to active endpoints)."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.status == PENDING, WebhookEndpoint.active.is_(True))
            )
            or 0
        )
