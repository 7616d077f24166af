"""Making, listing and revoking API keys; callers own the transaction, every change is audited.

A key is ``rmk_`` and 256 random bits; only its SHA-256 is stored (as for operator tokens) with
its first characters (``prefix``) to recognise it in a list. The clear key exists only in the
return value of `create_key`: it is shown once. Keys need a plan with API access (Enterprise):
making one on a lower plan is refused with 403 ``plan_required`` naming the plan, and a key
stops working if its organisation leaves such a plan (`server.api.auth`). A ``read`` key may
only read; a ``read-write`` key acts with the admin role, a ``read`` key with the viewer role
(the roles the fleet's routes check).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from server.accounts.audit import Actor, record_change
from server.accounts.roles import Role
from server.api.auth import PLAN_REQUIRED
from server.api.errors import ApiError
from server.api_keys.repository import KIND, ApiKeyRepository
from server.db.base import utcnow
from server.db.models import ApiToken
from server.organizations.service import hash_token
from server.plans.catalog import Plan, least_plan_with_api_access

KEY_PREFIX = "rmk_"
Scope = Literal["read", "read-write"]
SCOPES: tuple[Scope, ...] = ("read", "read-write")
_ROLE_OF_SCOPE = {"read": Role.VIEWER, "read-write": Role.ADMIN}


@dataclass(frozen=True)
class NewKey:
    key: ApiToken
    secret: str


def view(key: ApiToken) -> dict[str, object]:
    """What the audit log keeps of a key (never its secret or hash)."""
    return {
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked": key.revoked_at is not None,
    }


def require_api_access(plan: Plan) -> None:
    if not plan.spec.api_access:
        needed = least_plan_with_api_access()
        raise ApiError(
            403,
            PLAN_REQUIRED,
            f"API keys need the {needed.label} plan; this organisation is on {plan.label}. "
            "Upgrade to make keys",
        )


def create_key(
    session: Session,
    *,
    organization_id: uuid.UUID,
    plan: Plan,
    name: str,
    scope: str,
    expires_at: dt.datetime | None,
    actor: Actor,
) -> NewKey:
    require_api_access(plan)
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiError(422, "invalid_name", "give the key a name of 1 to 200 characters")
    if scope not in SCOPES:
        raise ApiError(422, "invalid_scope", f"scope is one of {', '.join(SCOPES)}")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ApiError(422, "invalid_expiry", "give expires_at with a time zone")
        if expires_at <= utcnow():
            raise ApiError(422, "invalid_expiry", "expires_at must be in the future")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKeyRepository(session, organization_id).add(
        ApiToken(
            organization_id=organization_id,
            kind=KIND,
            name=name,
            token_hash=hash_token(secret),
            prefix=secret[:12],
            scope=scope,
            role=_ROLE_OF_SCOPE[scope].value,
            expires_at=expires_at,
            created_by=actor.user_id,
        )
    )
    record_change(
        session,
        actor=actor,
        organization_id=organization_id,
        action="api_key.created",
        entity_type="api_key",
        entity_id=key.id,
        before=None,
        after=view(key),
    )
    return NewKey(key, secret)


def list_keys(session: Session, organization_id: uuid.UUID) -> Sequence[ApiToken]:
    return ApiKeyRepository(session, organization_id).all()


def revoke_key(
    session: Session, organization_id: uuid.UUID, key_id: uuid.UUID, actor: Actor
) -> ApiToken:
    """Revoke a key of the organisation (at once, for every later request); idempotent."""
    key = ApiKeyRepository(session, organization_id).get(key_id)
    if key is None:
        raise ApiError(404, "api_key_not_found", f"no API key {key_id} in your organisation")
    if key.revoked_at is None:
        before = view(key)
        key.revoked_at = utcnow()
        session.flush()
        record_change(
            session,
            actor=actor,
            organization_id=organization_id,
            action="api_key.revoked",
            entity_type="api_key",
            entity_id=key.id,
            before=before,
            after=view(key),
        )
    return key


def status_of(key: ApiToken, now: dt.datetime | None = None) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return "active"
