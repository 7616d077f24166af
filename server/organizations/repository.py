"""Database access for organisations, API tokens and devices (the only SQLAlchemy here)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import ApiToken, Device, Organization


class OrganizationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_organization(self, name: str) -> Organization:
        org = Organization(name=name)
        self.session.add(org)
        self.session.flush()
        return org

    def get_by_name(self, name: str) -> Organization | None:
        return self.session.scalar(select(Organization).where(Organization.name == name))

    def list_organizations(self) -> Sequence[Organization]:
        return self.session.scalars(select(Organization).order_by(Organization.name)).all()

    def add_token(
        self, organization_id: uuid.UUID, token_hash: str, name: str, role: str = "admin"
    ) -> ApiToken:
        token = ApiToken(
            organization_id=organization_id, token_hash=token_hash, name=name, role=role
        )
        self.session.add(token)
        self.session.flush()
        return token

    def organization_of_token(self, token_hash: str) -> uuid.UUID | None:
        """The organisation a live (not revoked) token belongs to."""
        return self.session.scalar(
            select(ApiToken.organization_id).where(
                ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)
            )
        )

    def live_token(self, token_hash: str) -> ApiToken | None:
        """The live (not revoked) token with this hash."""
        return self.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )

    def revoke_token(self, token_hash: str, at: dt.datetime) -> bool:
        token = self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
        if token is None:
            return False
        token.revoked_at = at
        self.session.flush()
        return True

    def add_device(self, organization_id: uuid.UUID, device_id: str) -> Device:
        device = Device(organization_id=organization_id, device_id=device_id)
        self.session.add(device)
        self.session.flush()
        return device

    def get_device(self, device_id: str) -> Device | None:
        return self.session.scalar(select(Device).where(Device.device_id == device_id))

    def devices_by_device_id(self, device_ids: Iterable[str]) -> dict[str, Device]:
        ids = set(device_ids)
        if not ids:
            return {}
        rows = self.session.scalars(select(Device).where(Device.device_id.in_(ids)))
        return {d.device_id: d for d in rows}
