"""Database access of accounts (the only SQLAlchemy of this package)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.accounts.models import AuditEntry, Invitation, PasswordReset, User, WebSession
from server.db.models import Organization


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # users
    def add_user(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def user(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def users_of(self, organization_id: uuid.UUID) -> Sequence[User]:
        return self.session.scalars(
            select(User).where(User.organization_id == organization_id).order_by(User.email)
        ).all()

    def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return self.session.get(Organization, organization_id)

    def organization_by_name(self, name: str) -> Organization | None:
        return self.session.scalar(select(Organization).where(Organization.name == name))

    # web sessions
    def add_session(self, web_session: WebSession) -> None:
        self.session.add(web_session)
        self.session.flush()

    def live_session(self, token_hash: str, now: dt.datetime) -> tuple[WebSession, User] | None:
        row = self.session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(
                WebSession.token_hash == token_hash,
                WebSession.expires_at > now,
                User.disabled_at.is_(None),
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def delete_session(self, token_hash: str) -> None:
        self.session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))

    def delete_sessions_of(self, user_id: uuid.UUID) -> None:
        self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))

    def delete_expired_sessions(self, now: dt.datetime) -> int:
        result = self.session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)

    # invitations and resets
    def add(self, row: Invitation | PasswordReset) -> None:
        self.session.add(row)
        self.session.flush()

    def invitation(self, invitation_id: uuid.UUID) -> Invitation | None:
        return self.session.get(Invitation, invitation_id)

    def open_invitations(
        self, organization_id: uuid.UUID, now: dt.datetime
    ) -> Sequence[Invitation]:
        return self.session.scalars(
            select(Invitation)
            .where(
                Invitation.organization_id == organization_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at.desc())
        ).all()

    def password_reset(self, reset_id: uuid.UUID) -> PasswordReset | None:
        return self.session.get(PasswordReset, reset_id)

    # audit
    def add_audit(self, entry: AuditEntry) -> None:
        self.session.add(entry)
        self.session.flush()

    def audit_of(
        self,
        organization_id: uuid.UUID,
        entity_type: str | None = None,
        entity_id: str | None = None,
    ) -> Sequence[AuditEntry]:
        q = select(AuditEntry).where(AuditEntry.organization_id == organization_id)
        if entity_type is not None:
            q = q.where(AuditEntry.entity_type == entity_type)
        if entity_id is not None:
            q = q.where(AuditEntry.entity_id == entity_id)
        return self.session.scalars(q.order_by(AuditEntry.created_at, AuditEntry.id)).all()
