"""HTTP routes of the fleet: the scanners' claim, and an organisation's devices.

Tenancy comes from the dependencies, never from here: reads get a `FleetRepository` bound to
the bearer token's organisation; writes get an `OrgFleet`, whose transactions are bound to it,
and which publishes to the broker only after its transaction committed. Roles too
(`server.fleet.access`): `Fleet` and `Reads` need a viewer, `Writes` an admin.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from server.api.deps import DbSession
from server.api.errors import ApiError
from server.fleet import enrolment, removal, service
from server.fleet.access import Caller, FleetManager, FleetReader
from server.fleet.repository import FleetRepository
from server.fleet.runtime import FleetRuntime
from server.fleet.schemas import (
    ClaimCodeCreate,
    ClaimCodeIssued,
    ClaimRefusal,
    ClaimReply,
    ClaimRequest,
    CommandCreate,
    CommandList,
    CommandView,
    ConfigState,
    ConfigUpdate,
    DevicePage,
    DeviceRemoved,
    DeviceSummary,
    FleetOverview,
    TelemetryPoint,
)

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])


def fleet_runtime(request: Request) -> FleetRuntime:
    runtime: FleetRuntime = request.app.state.fleet
    return runtime


Runtime = Annotated[FleetRuntime, Depends(fleet_runtime)]


def fleet_repository(session: DbSession, caller: FleetReader) -> FleetRepository:
    return FleetRepository(session, caller.organization_id)


Fleet = Annotated[FleetRepository, Depends(fleet_repository)]


@dataclass(frozen=True)
class OrgFleet:
    """The caller's organisation with the fleet runtime: for changes that are then published."""

    organization_id: uuid.UUID
    runtime: FleetRuntime
    caller: Caller


def org_fleet(caller: FleetManager, runtime: Runtime) -> OrgFleet:
    return OrgFleet(caller.organization_id, runtime, caller)


def org_fleet_reader(caller: FleetReader, runtime: Runtime) -> OrgFleet:
    return OrgFleet(caller.organization_id, runtime, caller)


#: For changes: an admin's (or owner's) token.
Writes = Annotated[OrgFleet, Depends(org_fleet)]
#: For reads that open their own sessions: any role's token.
Reads = Annotated[OrgFleet, Depends(org_fleet_reader)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ClaimRefusal, "description": text}
    for status, text in [
        (400, "malformed, checksum, invalid_device_id, invalid_csr"),
        (404, "unknown code"),
        (409, "used code, or device_taken"),
        (410, "expired code"),
    ]
}


# --------------------------------------------------------------------------- claim


@router.post("/claim", response_model=ClaimReply, responses=_REFUSALS)
def claim(body: ClaimRequest, runtime: Runtime) -> Any:
    """A scanner exchanges its one-time claim code for broker credentials (no token: the code is
    the proof). Errors are ``{"code", "detail"}``; the scanner stops retrying on 4xx."""
    try:
        with runtime.sessions.begin() as session:
            enrolled = enrolment.claim(
                session,
                runtime.ca,
                claim_code=body.claim_code,
                device_id=body.device_id,
                csr_pem=body.csr_pem,
                clock=runtime.clock,
            )
    except enrolment.EnrolmentError as exc:
        return JSONResponse({"code": exc.code, "detail": exc.message}, status_code=exc.status)
    runtime.sync_broker()  # committed: let the device in
    cert = enrolled.certificate
    return ClaimReply(
        device_id=enrolled.device.device_id,
        username=enrolled.credentials.username,
        password=enrolled.credentials.password,
        certificate_pem=cert.cert_pem.decode("ascii") if cert else None,
    )


@router.post("/claim-codes", response_model=ClaimCodeIssued, status_code=201)
def create_claim_code(fleet: Writes, body: ClaimCodeCreate) -> ClaimCodeIssued:
    """A one-time code a new scanner of the organisation claims its credentials with."""
    runtime = fleet.runtime
    with runtime.sessions.begin() as session:
        issued = enrolment.create_claim_code_for(
            session,
            fleet.organization_id,
            ttl=dt.timedelta(seconds=body.ttl_s),
            label=body.label,
            clock=runtime.clock,
        )
    return ClaimCodeIssued(
        code=issued.code, expires_at=issued.record.expires_at, label=issued.record.label
    )


# --------------------------------------------------------------------------- devices, health


@router.get("/devices", response_model=DevicePage)
def list_devices(
    repo: Fleet,
    runtime: Runtime,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DevicePage:
    """The organisation's scanners with their state, versions, latest heartbeat and config."""
    return service.list_devices(repo, cursor, limit, runtime.clock())


@router.get("/overview", response_model=FleetOverview)
def overview(
    repo: Fleet,
    runtime: Runtime,
    days: Annotated[int, Query(ge=1, le=90, description="Days of scans per day.")] = 7,
) -> FleetOverview:
    """Counts by state, scans per day, queue depths, read times, temperatures, versions."""
    return service.overview(repo, runtime.clock(), days)


@router.get("/devices/{device_id}", response_model=DeviceSummary)
def get_device(repo: Fleet, runtime: Runtime, device_id: str) -> DeviceSummary:
    return service.get_device(repo, device_id, runtime.clock())


@router.get("/devices/{device_id}/telemetry", response_model=list[TelemetryPoint])
def telemetry(
    repo: Fleet, device_id: str, limit: Annotated[int, Query(ge=1, le=2880)] = 120
) -> list[TelemetryPoint]:
    """The device's latest heartbeats, newest first."""
    return service.telemetry_history(repo, device_id, limit)


@router.post("/devices/{device_id}/revoke", response_model=DeviceSummary)
def revoke(fleet: Writes, device_id: str) -> DeviceSummary:
    """Cut the scanner off the broker (its password and certificates stop working) at once.

    It comes back only with a new claim code. Its receipts stay."""
    runtime = fleet.runtime
    try:
        with runtime.sessions.begin() as session:
            enrolment.revoke(
                session, device_id, organization_id=fleet.organization_id, clock=runtime.clock
            )
    except enrolment.EnrolmentError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    runtime.sync_broker()
    with runtime.transaction(fleet.organization_id) as repo:
        return service.get_device(repo, device_id, runtime.clock())


@router.post("/devices/{device_id}/rotate", response_model=ClaimReply)
def rotate(fleet: Writes, device_id: str) -> ClaimReply:
    """A new broker password for the scanner (shown once); the old one and its certificates
    stop working at once. Write it to the scanner's boot folder
    (``receipts provision boot-folder``) or the scanner stays cut off."""
    runtime = fleet.runtime
    try:
        with runtime.sessions.begin() as session:
            enrolled = enrolment.rotate(
                session,
                device_id,
                None,
                organization_id=fleet.organization_id,
                clock=runtime.clock,
            )
    except enrolment.EnrolmentError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    runtime.sync_broker()
    return ClaimReply(
        device_id=enrolled.device.device_id,
        username=enrolled.credentials.username,
        password=enrolled.credentials.password,
        certificate_pem=None,
    )


@router.delete("/devices/{device_id}", response_model=DeviceRemoved)
def remove_device(fleet: Writes, device_id: str) -> DeviceRemoved:
    """Remove the scanner: cut off the broker within seconds, its credentials, configuration,
    commands and telemetry deleted; its receipts and images stay (audited, see
    `server.fleet.removal`). The same organisation may enrol it again with a new claim code."""
    runtime = fleet.runtime
    try:
        with runtime.sessions.begin() as session:
            done = removal.remove_device(
                session,
                device_id,
                organization_id=fleet.organization_id,
                actor=fleet.caller.actor,
                now=runtime.clock(),
            )
    except enrolment.EnrolmentError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    runtime.sync_broker()  # committed: the broker drops its account and disconnects it
    service.clear_retained(runtime, device_id)
    return DeviceRemoved(
        device_id=done.device_id,
        removed_at=done.removed_at,
        receipts_kept=done.receipts_kept,
        deleted=done.deleted,
    )


# --------------------------------------------------------------------------- configuration


@router.get("/devices/{device_id}/config", response_model=ConfigState)
def get_config(repo: Fleet, device_id: str) -> ConfigState:
    """Desired configuration (version), what the device reported, and what it rejected."""
    return service.get_config(repo, device_id)


@router.put("/devices/{device_id}/config", response_model=ConfigState)
def put_config(fleet: Writes, device_id: str, body: ConfigUpdate) -> ConfigState:
    """Replace the desired configuration: stored under the next version, then published
    (retained) to the device; `published` says whether the broker has it yet."""
    runtime = fleet.runtime
    with runtime.transaction(fleet.organization_id) as repo:
        service.set_config(repo, device_id, body, runtime.clock())
    service.deliver(runtime, fleet.organization_id, device_id)
    with runtime.transaction(fleet.organization_id) as repo:
        return service.get_config(repo, device_id)


# --------------------------------------------------------------------------- commands


@router.post("/devices/{device_id}/commands", response_model=CommandView, status_code=201)
def create_command(fleet: Writes, device_id: str, body: CommandCreate) -> CommandView:
    """Send a command (QoS 1); its status is pending until the broker has it, then sent, then
    the device's outcome, or expired."""
    runtime = fleet.runtime
    ttl = dt.timedelta(seconds=runtime.settings.command_ttl_s)
    with runtime.transaction(fleet.organization_id) as repo:
        created = service.create_command(repo, device_id, body, runtime.clock(), ttl)
    service.deliver(runtime, fleet.organization_id, device_id)
    with runtime.transaction(fleet.organization_id) as repo:
        return service.get_command(repo, device_id, created.command_id, runtime.clock())


@router.get("/devices/{device_id}/commands", response_model=CommandList)
def list_commands(
    repo: Fleet,
    runtime: Runtime,
    device_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CommandList:
    """The device's latest commands, newest first."""
    return service.list_commands(repo, device_id, limit, runtime.clock())


@router.get("/devices/{device_id}/commands/{command_id}", response_model=CommandView)
def get_command(
    repo: Fleet, runtime: Runtime, device_id: str, command_id: uuid.UUID
) -> CommandView:
    return service.get_command(repo, device_id, command_id, runtime.clock())
