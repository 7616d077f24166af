"""Database access of API keys (rows of `api_tokens` with ``kind = key``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import ApiToken

KIND = "key"


class ApiKeyRepository:
    """The API keys of ONE organisation."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def add(self, key: ApiToken) -> ApiToken:
        if key.organization_id != self.organization_id or key.kind != KIND:
            raise ValueError("an API key of another organisation, or not a key")
        self.session.add(key)
        self.session.flush()
        return key

    def all(self) -> Sequence[ApiToken]:
        """Every key, live and revoked, newest first."""
        return self.session.scalars(
            select(ApiToken)
            .where(ApiToken.organization_id == self.organization_id, ApiToken.kind == KIND)
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        ).all()

    def get(self, key_id: uuid.UUID) -> ApiToken | None:
        return self.session.scalar(
            select(ApiToken).where(
                ApiToken.id == key_id,
                ApiToken.organization_id == self.organization_id,
                ApiToken.kind == KIND,
            )
        )
