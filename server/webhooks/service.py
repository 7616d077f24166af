"""Webhook endpoints of an organisation: register, change, remove, test, read deliveries.

The caller owns the transaction; every change is written to the audit log in it (never the
secret). Errors are `WebhookError` with an HTTP status and a stable code.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from server.accounts.audit import Actor, record_change
from server.db.base import utcnow
from server.webhooks.models import WebhookEndpoint
from server.webhooks.outbox import EVENT_TYPES, test_event
from server.webhooks.repository import WebhookRepository
from server.webhooks.schemas import DeliveryOut
from server.webhooks.signing import new_secret
from server.webhooks.urls import UrlRefused, check_url

logger = logging.getLogger(__name__)


class WebhookError(ValueError):
    """A refused webhook operation: HTTP `status`, stable `code`, a sentence for a person."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Policy:
    """What the deployment allows: private addresses (SSRF) and how many endpoints."""

    allow_private: bool
    max_endpoints: int


def _url(url: str, policy: Policy) -> str:
    try:
        return check_url(url, allow_private=policy.allow_private)
    except UrlRefused as exc:
        raise WebhookError(422, exc.code, exc.message) from exc


def _events(events: Sequence[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise WebhookError(
            422,
            "invalid_events",
            f"unknown event types {unknown}; choose from {', '.join(EVENT_TYPES)}"
            if unknown
            else f"subscribe to at least one of {', '.join(EVENT_TYPES)}",
        )
    return list(dict.fromkeys(events))


def _view(e: WebhookEndpoint) -> dict[str, object]:
    """What the audit log keeps of an endpoint (never the secret)."""
    return {
        "url": e.url,
        "events": list(e.events),
        "active": e.active,
        "description": e.description,
    }


def create(
    repo: WebhookRepository,
    *,
    url: str,
    events: Sequence[str],
    description: str,
    active: bool,
    policy: Policy,
    actor: Actor,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows `endpoint.secret` once)."""
    if repo.count() >= policy.max_endpoints:
        raise WebhookError(
            409,
            "too_many_webhooks",
            f"an organisation has at most {policy.max_endpoints} webhooks; delete one first",
        )
    now = utcnow()
    endpoint = repo.add(
        WebhookEndpoint(
            url=_url(url, policy),
            events=_events(events),
            description=description.strip()[:200],
            active=active,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
    )
    record_change(
        repo.session,
        actor=actor,
        organization_id=repo.organization_id,
        action="webhook.created",
        entity_type="webhook",
        entity_id=endpoint.id,
        before=None,
        after=_view(endpoint),
    )
    logger.info("webhook %s registered for organisation %s", endpoint.id, repo.organization_id)
    return endpoint


def require(repo: WebhookRepository, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = repo.endpoint(endpoint_id, for_update=True)
    if endpoint is None:
        raise WebhookError(
            404, "webhook_not_found", f"no webhook {endpoint_id} in your organisation"
        )
    return endpoint


def update(
    repo: WebhookRepository,
    endpoint_id: uuid.UUID,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    policy: Policy,
    actor: Actor,
) -> WebhookEndpoint:
    endpoint = require(repo, endpoint_id)
    before = _view(endpoint)
    if url is not None:
        endpoint.url = _url(url, policy)
    if events is not None:
        endpoint.events = _events(events)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if active is not None:
        endpoint.active = active
    endpoint.updated_at = utcnow()
    repo.session.flush()
    if _view(endpoint) != before:
        record_change(
            repo.session,
            actor=actor,
            organization_id=repo.organization_id,
            action="webhook.updated",
            entity_type="webhook",
            entity_id=endpoint.id,
            before=before,
            after=_view(endpoint),
        )
    return endpoint


def delete(repo: WebhookRepository, endpoint_id: uuid.UUID, *, actor: Actor) -> None:
    """Remove the endpoint with its pending and past deliveries."""
    endpoint = require(repo, endpoint_id)
    before = _view(endpoint)
    repo.delete(endpoint)
    record_change(
        repo.session,
        actor=actor,
        organization_id=repo.organization_id,
        action="webhook.deleted",
        entity_type="webhook",
        entity_id=endpoint_id,
        before=before,
        after=None,
    )


def send_test(repo: WebhookRepository, endpoint_id: uuid.UUID) -> uuid.UUID:
    """Queue a `webhook.test` event to the endpoint; the worker sends it like any other."""
    endpoint = require(repo, endpoint_id)
    if not endpoint.active:
        raise WebhookError(
            409, "webhook_inactive", "the webhook is inactive; activate it to send a test event"
        )
    return test_event(repo.session, repo.organization_id, endpoint.id)


def deliveries(repo: WebhookRepository, endpoint_id: uuid.UUID, limit: int) -> list[DeliveryOut]:
    """The endpoint's latest deliveries, newest first, each with its attempts."""
    if repo.endpoint(endpoint_id) is None:
        raise WebhookError(
            404, "webhook_not_found", f"no webhook {endpoint_id} in your organisation"
        )
    rows = repo.deliveries(endpoint_id, limit)
    attempts = repo.attempts(d.id for d, _e in rows)
    return [DeliveryOut.of(d, e, attempts[d.id]) for d, e in rows]
