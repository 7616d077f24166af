"""Request dependencies: the request's transaction, the caller's organisation, scoped repos.

Tenancy lives here and only here: `Receipts` is a repository bound to the organisation of the
bearer token, so an endpoint cannot forget to scope a query.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.api.auth import READ_METHODS, Principal, read_only_refusal, resolve_bearer
from server.api.errors import ApiError
from server.db.base import utcnow
from server.images.base import ImageStore
from server.receipts.repository import ReceiptRepository

_bearer = HTTPBearer(auto_error=False, description="An API token: `receipts admin create-token`.")


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed if the endpoint returns, rolled back if it raises.

    `async`, with only the commit or rollback sent to the thread pool: opening a session does
    no I/O (its connection is taken at the first query, in the endpoint's thread), and a
    plain generator dependency cost a thread-pool hop on the way in as well as out."""
    session: Session = request.app.state.sessions()
    session.begin()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_finish, session, False)
        raise
    await run_in_threadpool(_finish, session, True)


DbSession = Annotated[Session, Depends(get_session)]


def principal_of(
    request: Request, session: Session, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The bearer credential's caller (`server.api.auth`; `ApiGuard` resolved it already for
    paths under /api/v1); 401 without a live one, 403 for a read-only key's write."""
    if credentials is None:
        raise ApiError(
            401,
            "missing_token",
            "send 'Authorization: Bearer <token>'; create a token with "
            "'receipts admin create-token ORG'",
            {"WWW-Authenticate": "Bearer"},
        )
    found = getattr(request.state, "auth", None)
    if found is None:
        found = resolve_bearer(session, credentials.credentials, utcnow())
    return _checked(request, found)


def _checked(request: Request, found: Principal | ApiError) -> Principal:
    if isinstance(found, ApiError):
        raise found
    if found.read_only and request.method not in READ_METHODS:
        raise read_only_refusal()
    return found


async def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """`principal_of` as a dependency. `async`: with the guard's answer on the request (every
    bearer request under /api/v1) there is no I/O, so no thread-pool hop; without one the
    database is asked in the thread pool."""
    found = getattr(request.state, "auth", None)
    if credentials is not None and found is not None:
        return _checked(request, found)
    return await run_in_threadpool(principal_of, request, session, credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


# The dependencies below do no I/O, so they are `async`: FastAPI runs a plain `def` dependency
# in its thread pool, and a hop there and back per dependency was measurable per request.


async def current_organization(principal: CurrentPrincipal) -> uuid.UUID:
    return principal.organization_id


Organization = Annotated[uuid.UUID, Depends(current_organization)]


async def receipts_repository(session: DbSession, organization: Organization) -> ReceiptRepository:
    return ReceiptRepository(session, organization)


Receipts = Annotated[ReceiptRepository, Depends(receipts_repository)]


async def image_store(request: Request) -> ImageStore:
    store: ImageStore = request.app.state.images
    return store


Images = Annotated[ImageStore, Depends(image_store)]
