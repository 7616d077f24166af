"""Who calls the API: bearer credentials (operator tokens and API keys) and their limits.

One bearer mechanism, the `api_tokens` table: operator-issued tokens (``kind = token``,
``receipts admin create-token``) and API keys made by an organisation's owners and admins
(``kind = key``, `server.api_keys`). Only SHA-256 hashes are stored.

`ApiGuard` (ASGI middleware, every path under ``/api/v1`` that carries a bearer credential):
1. resolves the credential once (and notes its last use, at most once a minute), from the
   process's `CredentialCache` (`server.api.credentials`: seconds old at most, emptied by
   every write this process serves) or else from the database;
2. refuses a write (any method but GET, HEAD, OPTIONS) by a ``read`` key: 403
   ``read_only_key`` -- here, not in each route, so a new write route is covered by itself;
3. takes one request from the credential's token bucket (`server.api.ratelimit`): 429
   ``rate_limited`` with ``Retry-After`` and the ``RateLimit-*`` headers, which every answer
   to a limited credential carries.
Unknown, revoked or expired credentials pass through untouched: the `current_principal`
dependency of the routes that need one answers 401 (routes that take none, like a scanner's
claim, never look).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.accounts.audit import Actor
from server.accounts.roles import Role
from server.api.errors import ApiError, error_response
from server.api.ratelimit import Bucket, RateLimiter, RateLimitSettings
from server.db.base import utcnow
from server.db.models import ApiToken, Organization
from server.organizations.service import hash_token
from server.plans.catalog import Plan, least_plan_with_api_access, plan_of

if TYPE_CHECKING:
    from server.api.credentials import CredentialCache

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/v1"
#: `last_used_at` is written at most this often per credential.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)

READ_ONLY_KEY = "read_only_key"
RATE_LIMITED = "rate_limited"
PLAN_REQUIRED = "plan_required"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an operator token, an API key, or a signed-in user."""

    kind: Literal["token", "key", "user"]
    organization_id: uuid.UUID
    plan: Plan
    role: Role
    scope: Literal["read", "read-write"]
    name: str
    credential_id: uuid.UUID | None = None  # api_tokens.id
    user_id: uuid.UUID | None = None
    expires_at: dt.datetime | None = None  # the credential's expiry (API keys may have one)

    @property
    def read_only(self) -> bool:
        return self.scope == "read"

    @property
    def actor(self) -> Actor:
        if self.kind == "user":
            return Actor(label=self.name, user_id=self.user_id)
        return Actor.system(f"api-{self.kind}:{self.name or self.credential_id}")


def read_only_refusal() -> ApiError:
    return ApiError(
        403,
        READ_ONLY_KEY,
        "this API key is read-only: it may only GET; make a read-write key for changes",
    )


def resolve_bearer(session: Session, secret: str, now: dt.datetime) -> Principal | ApiError:
    """The principal of a bearer secret, or the error to answer with (in `session`'s
    transaction, which the caller commits: it may note the credential's last use)."""
    row = session.execute(
        select(ApiToken, Organization.plan)
        .join(Organization, Organization.id == ApiToken.organization_id)
        .where(ApiToken.token_hash == hash_token(secret))
    ).first()
    challenge = {"WWW-Authenticate": "Bearer"}
    if row is None or row[0].revoked_at is not None:
        return ApiError(401, "invalid_token", "the token is unknown or revoked", challenge)
    token, plan_value = row[0], plan_of(row[1])
    if token.expires_at is not None and token.expires_at <= now:
        return ApiError(401, "token_expired", "this API key has expired; make a new one", challenge)
    if token.kind == "key" and not plan_value.spec.api_access:
        needed = least_plan_with_api_access()
        return ApiError(
            403,
            PLAN_REQUIRED,
            f"API keys need the {needed.label} plan; this organisation is on {plan_value.label}",
        )
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        token.last_used_at = now
        session.flush()
    return Principal(
        kind="key" if token.kind == "key" else "token",
        organization_id=token.organization_id,
        plan=plan_value,
        role=Role(token.role),
        scope="read" if token.scope == "read" else "read-write",
        name=token.name,
        credential_id=token.id,
        expires_at=token.expires_at,
    )


def _bearer_of(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            text = bytes(value).decode("latin-1")
            kind, _, secret = text.partition(" ")
            if kind.lower() == "bearer" and secret.strip():
                return secret.strip()
            return None
    return None


class ApiGuard:
    """Credential, scope and rate limit of every `/api/v1` request that carries a bearer."""

    def __init__(
        self,
        app: ASGIApp,
        settings: RateLimitSettings,
        limiter: RateLimiter,
        credentials: CredentialCache,
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.credentials = credentials

    def _authenticate(
        self, sessions: sessionmaker[Session], secret: str, token_hash: str, generation: int
    ) -> Principal | ApiError:
        with sessions.begin() as session:
            found = resolve_bearer(session, secret, utcnow())
        if isinstance(found, Principal):  # committed: its last use is noted
            self.credentials.put(token_hash, found, found.expires_at, generation)
        return found

    async def _resolve(self, app_state: Any, secret: str) -> Principal | ApiError:
        """From the cache (no thread, no connection) or else from the database."""
        token_hash = hash_token(secret)
        cached = self.credentials.get(token_hash, utcnow())
        if cached is not None:
            return cached
        generation = self.credentials.generation  # read before the lookup (see `put`)
        return await run_in_threadpool(
            self._authenticate, app_state.sessions, secret, token_hash, generation
        )

    def _bucket(self, principal: Principal) -> Bucket | None:
        if not self.settings.enabled:
            return None
        if principal.kind == "key":
            return self.settings.api_keys
        return self.settings.operator_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            try:
                await self._guard(scope, receive, send)
            finally:  # committed by now: it may have revoked a key or changed a plan or role
                self.credentials.invalidate()
            return
        await self._guard(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        secret = _bearer_of(scope) if scope["type"] == "http" else None
        if secret is None or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        found = await self._resolve(app_state, secret)
        scope.setdefault("state", {})["auth"] = found
        if not isinstance(found, Principal):
            await self.app(scope, receive, send)  # the route's dependency answers
            return
        if found.read_only and scope["method"] not in READ_METHODS:
            refusal = read_only_refusal()
            await error_response(refusal.status, refusal.code, refusal.message)(
                scope, receive, send
            )
            return
        bucket = self._bucket(found)
        if bucket is None:
            await self.app(scope, receive, send)
            return
        decision = self.limiter.take(found.credential_id, bucket)
        headers = decision.headers()
        if not decision.allowed:
            metrics = getattr(app_state, "metrics", None)
            if metrics is not None:
                metrics.quota_rejections.labels("rate_limit").inc()
            await error_response(
                429,
                RATE_LIMITED,
                f"too many requests for this credential ({bucket.burst} at once, "
                f"{bucket.per_minute:g} a minute); retry after {decision.retry_after_s} s",
                headers,
            )(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, _send)
