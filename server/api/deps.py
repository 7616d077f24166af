"""Request dependencies: the request's transaction, the caller's organisation, scoped repos.

Tenancy lives here and only here: `Receipts` is a repository bound to the organisation of the
bearer token, so an endpoint cannot forget to scope a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.api.auth import READ_METHODS, Principal, read_only_refusal, resolve_bearer
from server.api.errors import ApiError
from server.db.base import utcnow
from server.images.base import ImageStore
from server.receipts.repository import ReceiptRepository

_bearer = HTTPBearer(auto_error=False, description="An API token: `receipts admin create-token`.")


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed if the endpoint returns, rolled back if it raises."""
    with request.app.state.sessions() as session, session.begin():
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
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
    if isinstance(found, ApiError):
        raise found
    if found.read_only and request.method not in READ_METHODS:
        raise read_only_refusal()
    return found


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def current_organization(principal: CurrentPrincipal) -> uuid.UUID:
    return principal.organization_id


Organization = Annotated[uuid.UUID, Depends(current_organization)]


def receipts_repository(session: DbSession, organization: Organization) -> ReceiptRepository:
    return ReceiptRepository(session, organization)


Receipts = Annotated[ReceiptRepository, Depends(receipts_repository)]


def image_store(request: Request) -> ImageStore:
    store: ImageStore = request.app.state.images
    return store


Images = Annotated[ImageStore, Depends(image_store)]
