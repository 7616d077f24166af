"""The owner's scanners: the fleet list (state, last seen, versions, queue) and one scanner's
page (telemetry, configuration, commands), with commands and removal for owners and admins.

Everything goes through the fleet's service functions on the organisation-scoped repository
(`Scanners`, `server.dashboard.deps`), exactly as `/api/v1/fleet` does: no query of its own.
Reading needs a signed-in user of any role; sending a command or removing a scanner needs the
fleet's ``MANAGE`` role (admin) and a form with the session's CSRF token. A change commits
first, then is published (commands) or mirrored to the broker (removal), like the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from models.protocol import validate_device_id
from server.accounts.service import user_actor
from server.api.errors import ApiError
from server.dashboard.deps import PREFIX, CheckedForm, Db, PageError, Scanners, Viewer, require
from server.dashboard.pages import redirect, render
from server.fleet import access, removal, service
from server.fleet.enrolment import EnrolmentError
from server.fleet.runtime import FleetRuntime
from server.fleet.schemas import CommandCreate, DeviceSummary

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: Devices on one page of the list.
PER_PAGE = 100
#: Commands shown on a scanner's page.
RECENT_COMMANDS = 20
#: The commands the page offers (the scanner refuses names it does not know; `ota` goes
#: through rollouts, never by hand).
COMMANDS: dict[str, str] = {
    "reboot": "Reboot the scanner",
    "restart_agent": "Restart the scanner's software",
    "rescan_last": "Read the last receipt again",
    "upload_diagnostics": "Send diagnostics",
    "test_feedback": "Test the light and the buzzer",
    "purge_outbox": "Free space: drop images already delivered",
}


def _runtime(request: Request) -> FleetRuntime:
    runtime: FleetRuntime = request.app.state.fleet
    return runtime


def _page_error(exc: ApiError) -> PageError:
    if exc.status == 404:
        return PageError(404, "there is no such scanner in your organisation")
    return PageError(exc.status, exc.message)


def device_url(device_id: str) -> str:
    return f"{PREFIX}/devices/{quote(device_id, safe='')}"


def _figure(telemetry: dict[str, Any] | None, key: str) -> Any:
    value = (telemetry or {}).get(key)
    return None if isinstance(value, bool) else value


def row_of(d: DeviceSummary) -> dict[str, Any]:
    """What the list shows of one scanner."""
    return {
        "device": d,
        "url": device_url(d.device_id),
        "outbox": _figure(d.telemetry, "outbox_depth"),
        "read_ms": _figure(d.telemetry, "last_read_ms"),
        "temp": _figure(d.telemetry, "cpu_temp_c"),
    }


def _is_id(text: str) -> bool:
    try:
        validate_device_id(text)
    except ValueError:
        return False
    return True


def ago(at: dt.datetime | None, now: dt.datetime) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago', or 'never'."""
    if at is None:
        return "never"
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    s = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"


@router.get("/devices")
def devices_page(request: Request, who: Viewer, repo: Scanners) -> Response:
    runtime = _runtime(request)
    now = runtime.clock()
    after = request.query_params.get("after") or None
    page = service.list_devices(repo, after, PER_PAGE, now)
    overview = service.overview(repo, now, 1)
    removed = request.query_params.get("removed", "")
    return render(
        request,
        "devices.html",
        who,
        rows=[row_of(d) for d in page.items],
        counts=overview.devices,
        queue=overview.queue_depth,
        next_url=f"{PREFIX}/devices?after={quote(page.next_cursor)}" if page.next_cursor else None,
        now=now,
        ago=ago,
        notice=f"Scanner {removed} was removed; its receipts stay." if _is_id(removed) else None,
    )


def _device_page(
    request: Request,
    who: Viewer,
    repo: Scanners,
    device_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    runtime = _runtime(request)
    now = runtime.clock()
    try:
        device = service.get_device(repo, device_id, now)
        config = service.get_config(repo, device_id)
        commands = service.list_commands(repo, device_id, RECENT_COMMANDS, now).items
    except ApiError as exc:
        raise _page_error(exc) from exc
    return render(
        request,
        "device.html",
        who,
        status=status,
        device=device,
        url=device_url(device_id),
        config=config,
        commands=commands,
        command_names=COMMANDS,
        can_manage=who.role.at_least(access.MANAGE) and device.state != "revoked",
        can_remove=who.role.at_least(access.MANAGE),
        now=now,
        ago=ago,
        error=error,
        notice=notice,
    )


@router.get("/devices/{device_id}")
def device_page(request: Request, who: Viewer, repo: Scanners, device_id: str) -> Response:
    sent = request.query_params.get("sent")
    notice = f"Command {sent} sent; its result appears below." if sent in COMMANDS else None
    return _device_page(request, who, repo, device_id, notice=notice)


@router.post("/devices/{device_id}/commands")
def send_command(
    request: Request, *, db: Db, who: Viewer, repo: Scanners, form: CheckedForm, device_id: str
) -> Response:
    require(who, access.MANAGE)
    name = form.get("name", "")
    if name not in COMMANDS:
        return _device_page(
            request, who, repo, device_id, status=400, error="choose a command from the list"
        )
    runtime = _runtime(request)
    ttl = dt.timedelta(seconds=runtime.settings.command_ttl_s)
    try:
        service.create_command(repo, device_id, CommandCreate(name=name), runtime.clock(), ttl)
    except ApiError as exc:
        if exc.status == 404:
            raise _page_error(exc) from exc
        return _device_page(request, who, repo, device_id, status=exc.status, error=exc.message)
    db.commit()  # published after the commit, in transactions of its own (as the API does)
    service.deliver(runtime, who.user.organization_id, device_id)
    return redirect(f"{device_url(device_id)}?sent={name}")


@router.get("/devices/{device_id}/remove")
def remove_page(request: Request, who: Viewer, repo: Scanners, device_id: str) -> Response:
    require(who, access.MANAGE)
    try:
        device = service.get_device(repo, device_id, _runtime(request).clock())
    except ApiError as exc:
        raise _page_error(exc) from exc
    return render(request, "device_remove.html", who, device=device, url=device_url(device_id))


@router.post("/devices/{device_id}/remove")
def remove_confirmed(
    request: Request, db: Db, who: Viewer, form: CheckedForm, device_id: str
) -> Response:
    require(who, access.MANAGE)
    if form.get("confirm", "").strip() != device_id:
        raise PageError(400, f"type the scanner's id ({device_id}) to remove it; nothing changed")
    runtime = _runtime(request)
    try:
        removal.remove_device(
            db,
            device_id,
            organization_id=who.user.organization_id,
            actor=user_actor(who.user),
            now=runtime.clock(),
        )
    except EnrolmentError as exc:
        raise PageError(exc.status, "there is no such scanner in your organisation") from exc
    db.commit()
    runtime.sync_broker()  # committed: the broker drops its account and disconnects it
    service.clear_retained(runtime, device_id)
    return redirect(f"{PREFIX}/devices?removed={quote(device_id, safe='')}")
