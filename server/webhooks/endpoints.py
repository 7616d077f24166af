"""HTTP routes of webhooks (`/api/v1/webhooks`): an admin's (or owner's) token manages them.

Tenancy and roles come from the dependencies: `Hooks` is a repository bound to the token's
organisation, built only for a token with the admin role or higher.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from server.accounts.audit import Actor
from server.accounts.roles import Role
from server.api.auth import Principal
from server.api.deps import CurrentPrincipal, DbSession
from server.api.errors import ApiError
from server.settings import Settings
from server.webhooks import service
from server.webhooks.repository import WebhookRepository
from server.webhooks.schemas import (
    DeliveryOut,
    TestQueued,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

#: The least role of a token that manages webhooks.
MANAGE = Role.ADMIN


def require_role(principal: Principal, role: Role) -> Principal:
    """The caller, if its role is `role` or higher; else 403 ``insufficient_role``."""
    if not principal.role.at_least(role):
        raise ApiError(
            403,
            "insufficient_role",
            f"this needs a token with the {role.value} role or higher; this one is "
            f"{principal.role.value} (receipts admin create-token ORG --role {role.value})",
        )
    return principal


def _admin(principal: CurrentPrincipal) -> Principal:
    return require_role(principal, MANAGE)


Admin = Annotated[Principal, Depends(_admin)]


def webhook_repository(session: DbSession, caller: Admin) -> WebhookRepository:
    return WebhookRepository(session, caller.organization_id)


Hooks = Annotated[WebhookRepository, Depends(webhook_repository)]


def policy_of(settings: Settings) -> service.Policy:
    hooks = settings.webhooks
    return service.Policy(hooks.private_allowed(settings.environment), hooks.max_endpoints)


def _policy(request: Request) -> service.Policy:
    return policy_of(request.app.state.settings)


Policy = Annotated[service.Policy, Depends(_policy)]


def _api_error(exc: service.WebhookError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def _actor(caller: Principal) -> Actor:
    return caller.actor


@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(repo: Hooks, caller: Admin, policy: Policy, body: WebhookIn) -> WebhookCreated:
    """Register a URL; the answer holds the signing secret, shown only this once."""
    try:
        endpoint = service.create(
            repo,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
            policy=policy,
            actor=_actor(caller),
        )
    except service.WebhookError as exc:
        raise _api_error(exc) from exc
    return WebhookCreated(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=list[WebhookOut])
def list_webhooks(repo: Hooks) -> list[WebhookOut]:
    return [WebhookOut.of(e) for e in repo.endpoints()]


@router.get("/{webhook_id}", response_model=WebhookOut)
def get_webhook(repo: Hooks, webhook_id: uuid.UUID) -> WebhookOut:
    endpoint = repo.endpoint(webhook_id)
    if endpoint is None:
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id} in your organisation")
    return WebhookOut.of(endpoint)


@router.patch("/{webhook_id}", response_model=WebhookOut)
def update_webhook(
    repo: Hooks, caller: Admin, policy: Policy, webhook_id: uuid.UUID, body: WebhookUpdate
) -> WebhookOut:
    """Change the URL, events, description or `active` (an inactive webhook keeps its queue)."""
    try:
        endpoint = service.update(
            repo,
            webhook_id,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
            policy=policy,
            actor=_actor(caller),
        )
    except service.WebhookError as exc:
        raise _api_error(exc) from exc
    return WebhookOut.of(endpoint)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(repo: Hooks, caller: Admin, webhook_id: uuid.UUID) -> Response:
    try:
        service.delete(repo, webhook_id, actor=_actor(caller))
    except service.WebhookError as exc:
        raise _api_error(exc) from exc
    return Response(status_code=204)


@router.post("/{webhook_id}/test", response_model=TestQueued, status_code=202)
def test_webhook(repo: Hooks, webhook_id: uuid.UUID) -> TestQueued:
    """Queue a signed `webhook.test` event to this URL; see its delivery under /deliveries."""
    try:
        event_id = service.send_test(repo, webhook_id)
    except service.WebhookError as exc:
        raise _api_error(exc) from exc
    return TestQueued(event_id=event_id, message="queued; the delivery worker sends it shortly")


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    repo: Hooks, webhook_id: uuid.UUID, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[DeliveryOut]:
    """The latest deliveries to this URL, newest first, with every attempt."""
    try:
        return service.deliveries(repo, webhook_id, limit)
    except service.WebhookError as exc:
        raise _api_error(exc) from exc
