"""HTTP routes of API keys: `/api/v1/api-keys` (owners and admins, `server.api.management`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from server.api.deps import DbSession
from server.api.management import KeyManager
from server.api_keys import service
from server.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyView

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


@router.post("", response_model=ApiKeyCreated, status_code=201)
def create_api_key(session: DbSession, caller: KeyManager, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key; its `secret` is in this answer only. Needs the Enterprise plan (403
    `plan_required` otherwise)."""
    new = service.create_key(
        session,
        organization_id=caller.organization_id,
        plan=caller.plan,
        name=body.name,
        scope=body.scope,
        expires_at=body.expires_at,
        actor=caller.actor,
    )
    return ApiKeyCreated(**ApiKeyView.of(new.key).model_dump(), secret=new.secret)


@router.get("", response_model=ApiKeyList)
def list_api_keys(session: DbSession, caller: KeyManager) -> ApiKeyList:
    """Every key of the organisation, live and revoked, newest first (never their secrets)."""
    keys = service.list_keys(session, caller.organization_id)
    return ApiKeyList(items=[ApiKeyView.of(k) for k in keys])


@router.delete("/{key_id}", response_model=ApiKeyView)
def revoke_api_key(session: DbSession, caller: KeyManager, key_id: uuid.UUID) -> ApiKeyView:
    """Revoke a key: the next request with it gets 401."""
    key = service.revoke_key(session, caller.organization_id, key_id, caller.actor)
    return ApiKeyView.of(key)
