"""The audit log: every change of a receipt, user or device is written through `record_change`."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from server.accounts.models import AuditEntry
from server.accounts.repository import AccountRepository
from server.db.base import utcnow


@dataclass(frozen=True)
class Actor:
    """Who made a change: a signed-in user, or a named process ('cli', 'ingest', 'system')."""

    label: str
    user_id: uuid.UUID | None = None

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(label=name)


def record_change(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    action: str,
    entity_type: str,
    entity_id: str | uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Write one audit entry in the caller's transaction (the change and its entry commit
    together). `before`/`after` hold JSON values only, never secrets or password hashes."""
    entry = AuditEntry(
        organization_id=organization_id,
        actor_user_id=actor.user_id,
        actor=actor.label[:200],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=before,
        after=after,
        created_at=at or utcnow(),
    )
    AccountRepository(session).add_audit(entry)
    return entry
