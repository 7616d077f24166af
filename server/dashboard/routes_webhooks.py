"""The webhooks settings page (owners and admins): register a URL (its signing secret shown
once), switch it on or off, delete it, send a test event, and read recent deliveries.

The same service as ``/api/v1/webhooks`` (`server.webhooks.service`) on the repository bound
to the signed-in user's organisation (`Hooks`); the same role (``MANAGE``, admin) and the same
URL policy (`server.webhooks.endpoints.policy_of`). Every form carries the session's CSRF token.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.accounts.service import user_actor
from server.dashboard.deps import PREFIX, CheckedForm, Db, Hooks, PageError, Viewer, require
from server.dashboard.pages import redirect, render
from server.webhooks import service
from server.webhooks.endpoints import MANAGE, policy_of
from server.webhooks.schemas import ALL_EVENTS

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: Deliveries shown per endpoint.
RECENT_DELIVERIES = 10

NOTICES = {
    "deleted": "The webhook is deleted, with its deliveries.",
    "on": "The webhook is active: events are sent to it again (what waited is sent too).",
    "off": "The webhook is paused: events wait for it until you activate it.",
    "test": "A test event is queued; its delivery appears below within a few seconds.",
}


def _page(
    request: Request,
    who: Viewer,
    repo: Hooks,
    *,
    status: int = 200,
    error: str | None = None,
    created: Any = None,
    typed: dict[str, str] | None = None,
) -> Response:
    require(who, MANAGE)
    endpoints = repo.endpoints()
    hooks = [
        {"endpoint": e, "deliveries": service.deliveries(repo, e.id, RECENT_DELIVERIES)}
        for e in endpoints
    ]
    return render(
        request,
        "webhooks.html",
        who,
        status=status,
        hooks=hooks,
        events=ALL_EVENTS,
        error=error,
        created=created,
        typed=typed or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


def _refused(exc: service.WebhookError) -> PageError:
    if exc.status == 404:
        return PageError(404, "there is no such webhook in your organisation")
    return PageError(exc.status, exc.message)


@router.get("/webhooks")
def webhooks_page(request: Request, who: Viewer, repo: Hooks) -> Response:
    return _page(request, who, repo)


@router.post("/webhooks")
def create_webhook(
    request: Request, db: Db, who: Viewer, repo: Hooks, form: CheckedForm
) -> Response:
    require(who, MANAGE)
    events = [e for e in ALL_EVENTS if form.get(f"event_{e}") == "1"]
    typed = {"url": form.get("url", ""), "description": form.get("description", "")}
    try:
        with db.begin_nested():
            endpoint = service.create(
                repo,
                url=typed["url"].strip(),
                events=events,
                description=typed["description"],
                active=True,
                policy=policy_of(request.app.state.settings),
                actor=user_actor(who.user),
            )
    except service.WebhookError as exc:
        return _page(request, who, repo, status=exc.status, error=exc.message, typed=typed)
    return _page(request, who, repo, status=201, created=endpoint)


@router.post("/webhooks/{webhook_id}/active")
def set_active(
    request: Request, who: Viewer, repo: Hooks, form: CheckedForm, webhook_id: uuid.UUID
) -> Response:
    require(who, MANAGE)
    active = form.get("active") == "1"
    try:
        service.update(
            repo,
            webhook_id,
            active=active,
            policy=policy_of(request.app.state.settings),
            actor=user_actor(who.user),
        )
    except service.WebhookError as exc:
        raise _refused(exc) from exc
    return redirect(f"{PREFIX}/webhooks?done={'on' if active else 'off'}")


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(who: Viewer, repo: Hooks, form: CheckedForm, webhook_id: uuid.UUID) -> Response:
    require(who, MANAGE)
    del form  # checked for CSRF; nothing else in it
    try:
        service.delete(repo, webhook_id, actor=user_actor(who.user))
    except service.WebhookError as exc:
        raise _refused(exc) from exc
    return redirect(f"{PREFIX}/webhooks?done=deleted")


@router.post("/webhooks/{webhook_id}/test")
def test_webhook(who: Viewer, repo: Hooks, form: CheckedForm, webhook_id: uuid.UUID) -> Response:
    require(who, MANAGE)
    del form
    try:
        service.send_test(repo, webhook_id)
    except service.WebhookError as exc:
        raise _refused(exc) from exc
    return redirect(f"{PREFIX}/webhooks?done=test")
