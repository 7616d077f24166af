"""What the API-keys routes take and return."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.api_keys.service import status_of
from server.db.models import ApiToken


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    scope: Literal["read", "read-write"] = Field(
        default="read", description="`read`: GET only; `read-write`: also changes."
    )
    expires_at: dt.datetime | None = Field(
        default=None, description="When it stops working (with a time zone); null: never."
    )


class ApiKeyView(BaseModel):
    id: uuid.UUID
    name: str
    scope: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    status: Literal["active", "expired", "revoked"]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, key: ApiToken) -> ApiKeyView:
        status = status_of(key)
        assert status in ("active", "expired", "revoked")
        return cls(
            id=key.id,
            name=key.name,
            scope=key.scope,
            prefix=key.prefix,
            status=status,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyView):
    secret: str = Field(description="The key itself: shown this once, never again.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyView]
