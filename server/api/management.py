"""Callers allowed to manage an organisation: API keys (owner or admin) and its plan (owner).

Two kinds of caller qualify, each with its role:
- a person signed in to the dashboard (the ``rm_session`` cookie); a change (any method but
  GET/HEAD/OPTIONS) must carry the session's CSRF token in ``X-CSRF-Token``;
- an operator-issued bearer token (``receipts admin create-token ORG --role owner``), which is
  what billing would hold to call ``PUT /api/v1/organization/plan``.
API keys never qualify (403 ``owner_or_admin_required``): a leaked key cannot mint more keys or
change the plan.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from server.accounts.repository import AccountRepository
from server.accounts.roles import Role
from server.accounts.service import session_user
from server.accounts.tokens import same
from server.api.auth import READ_METHODS, Principal
from server.api.deps import DbSession, _bearer, principal_of
from server.api.errors import ApiError
from server.dashboard.deps import SESSION_COOKIE
from server.plans.catalog import plan_of

OWNER_OR_ADMIN_REQUIRED = "owner_or_admin_required"
OWNER_REQUIRED = "owner_required"
CSRF_FAILED = "csrf_failed"


def _caller(
    request: Request, session: DbSession, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    if credentials is not None:
        principal = principal_of(request, session, credentials)
        if principal.kind == "key":
            raise ApiError(
                403,
                OWNER_OR_ADMIN_REQUIRED,
                "API keys cannot manage API keys or the plan; sign in to the dashboard as an "
                "owner or admin",
            )
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    found = session_user(session, token) if token else None
    if found is None:
        raise ApiError(
            401,
            "missing_token",
            "sign in to the dashboard as an owner or admin, or send "
            "'Authorization: Bearer <operator token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    web, user = found
    if request.method not in READ_METHODS and not same(
        request.headers.get("X-CSRF-Token"), web.csrf_token
    ):
        raise ApiError(403, CSRF_FAILED, "send the session's CSRF token in the X-CSRF-Token header")
    org = AccountRepository(session).organization(user.organization_id)
    return Principal(
        kind="user",
        organization_id=user.organization_id,
        plan=plan_of(org.plan if org else ""),
        role=Role(user.role),
        scope="read-write",
        name=user.email,
        user_id=user.id,
    )


def key_manager(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    caller = _caller(request, session, credentials)
    if not caller.role.at_least(Role.ADMIN):
        raise ApiError(
            403,
            OWNER_OR_ADMIN_REQUIRED,
            f"only an owner or admin manages API keys; you are {caller.role.value}",
        )
    return caller


def plan_owner(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    caller = _caller(request, session, credentials)
    if not caller.role.at_least(Role.OWNER):
        raise ApiError(
            403, OWNER_REQUIRED, f"only an owner changes the plan; you are {caller.role.value}"
        )
    return caller


KeyManager = Annotated[Principal, Depends(key_manager)]
PlanOwner = Annotated[Principal, Depends(plan_owner)]
