"""HTTP routes of OTA releases and staged rollouts (`server.fleet.rollouts`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from server.api.errors import ApiError
from server.fleet import releases, rollouts
from server.fleet.endpoints import Reads, Runtime, Writes
from server.fleet.models import Release, Rollout
from server.fleet.repository import FleetRepository
from server.fleet.rollout_repository import RolloutRepository, release_any

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])


class ReleaseView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    artifact_size: int
    artifact_sha256: str
    created_at: dt.datetime


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release_id: uuid.UUID
    canary_percent: float = Field(default=5, gt=0, le=100)
    waves: list[float] = Field(default=[25, 100], description="Cumulative percentages; last 100.")
    failure_threshold: float = Field(default=0.0, ge=0, le=1, description="Share of installs.")
    quality_drop_threshold: float = Field(default=0.05, ge=0, le=1)
    min_scans: int = Field(default=20, ge=1, description="Receipts needed on each side.")


class RolloutView(BaseModel):
    id: uuid.UUID
    release_id: uuid.UUID
    state: str
    reason: str | None
    current_wave: int
    canary_percent: float
    waves: list[float]
    devices: dict[str, int] = Field(description="Devices by status.")
    waves_devices: list[list[str]] = Field(description="Device ids of each wave (0: canary).")
    created_at: dt.datetime
    updated_at: dt.datetime


def _view(repo: RolloutRepository, r: Rollout) -> RolloutView:
    members = repo.members(r)
    counts: dict[str, int] = {}
    per_wave: list[list[str]] = [[] for _ in range(len(r.waves) + 1)]
    for m in members:
        counts[m.row.status] = counts.get(m.row.status, 0) + 1
        per_wave[m.row.wave].append(m.device_id)
    return RolloutView(
        id=r.id,
        release_id=r.release_id,
        state=r.state,
        reason=r.reason,
        current_wave=r.current_wave,
        canary_percent=r.canary_percent,
        waves=list(r.waves),
        devices=counts,
        waves_devices=per_wave,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


@router.post("/releases", response_model=ReleaseView, status_code=201)
def upload_release(
    fleet: Writes,
    manifest: Annotated[UploadFile, File(description="The manifest's exact JSON bytes.")],
    signature: Annotated[str, Form(description="Base64 Ed25519 signature of the manifest.")],
    artifact: Annotated[UploadFile, File(description="The release's tar.gz.")],
) -> Release:
    """Upload a signed release; the artifact must match the size and sha256 the manifest pins."""
    runtime = fleet.runtime
    with runtime.sessions.begin() as session:
        repo = RolloutRepository(session, fleet.organization_id)
        return releases.register(
            repo,
            runtime.settings,
            manifest.file.read(),
            signature,
            artifact.file,
            now=runtime.clock(),
        )


@router.get("/releases", response_model=list[ReleaseView])
def list_releases(fleet: Reads) -> Any:
    with fleet.runtime.sessions() as session:
        return list(RolloutRepository(session, fleet.organization_id).releases())


@router.get("/releases/{release_id}/artifact", include_in_schema=True)
def artifact(
    runtime: Runtime,
    release_id: uuid.UUID,
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query()],
) -> FileResponse:
    """The artifact, by the signed, expiring link of an ``ota`` command (no bearer token)."""
    if not releases.link_valid(runtime.url_key, release_id, expires, sig, runtime.clock()):
        raise ApiError(403, "bad_link", "the link is invalid or expired")
    with runtime.sessions() as session:
        release = release_any(session, release_id)
    if release is None:
        raise ApiError(404, "release_not_found", f"no release {release_id}")
    path = releases.artifact_path(runtime.settings, release)
    if not path.is_file():
        raise ApiError(404, "artifact_missing", "the artifact is not in the releases folder")
    return FileResponse(path, media_type="application/gzip")


@router.post("/rollouts", response_model=RolloutView, status_code=201)
def create_rollout(fleet: Writes, body: RolloutCreate) -> RolloutView:
    """Plan the waves over the organisation's active scanners and send the canary's installs."""
    runtime = fleet.runtime
    rollouts.link_for(runtime)  # refuse early when links cannot be made
    with runtime.sessions.begin() as session:
        devices = [
            (r.device.id, r.device.device_id)
            for r in FleetRepository(session, fleet.organization_id).devices()
            if r.account is None or r.account.revoked_at is None
        ]
        repo = RolloutRepository(session, fleet.organization_id)
        created = rollouts.create(
            repo, body.release_id, devices, body.model_dump(exclude={"release_id"}), runtime.clock()
        )
    rollouts.tick(runtime, fleet.organization_id, created.id)
    return get_rollout(fleet, created.id)


@router.get("/rollouts", response_model=list[RolloutView])
def list_rollouts(fleet: Reads) -> list[RolloutView]:
    with fleet.runtime.sessions() as session:
        repo = RolloutRepository(session, fleet.organization_id)
        return [_view(repo, r) for r in repo.rollouts()]


@router.get("/rollouts/{rollout_id}", response_model=RolloutView)
def get_rollout(fleet: Reads, rollout_id: uuid.UUID) -> RolloutView:
    with fleet.runtime.sessions() as session:
        repo = RolloutRepository(session, fleet.organization_id)
        r = repo.rollout(rollout_id)
        if r is None:
            raise ApiError(404, "rollout_not_found", f"no rollout {rollout_id}")
        return _view(repo, r)


def _change(fleet: Writes, rollout_id: uuid.UUID, action: str) -> RolloutView:
    runtime = fleet.runtime
    with runtime.sessions.begin() as session:
        repo = RolloutRepository(session, fleet.organization_id)
        r = repo.rollout(rollout_id, for_update=True)
        if r is None:
            raise ApiError(404, "rollout_not_found", f"no rollout {rollout_id}")
        (rollouts.resume if action == "resume" else rollouts.abort)(repo, r, runtime.clock())
    rollouts.tick(runtime, fleet.organization_id, rollout_id)
    return get_rollout(fleet, rollout_id)


@router.post("/rollouts/{rollout_id}/resume", response_model=RolloutView)
def resume_rollout(fleet: Writes, rollout_id: uuid.UUID) -> RolloutView:
    """Continue a halted rollout: failures so far are forgiven, the quality window restarts."""
    return _change(fleet, rollout_id, "resume")


@router.post("/rollouts/{rollout_id}/abort", response_model=RolloutView)
def abort_rollout(fleet: Writes, rollout_id: uuid.UUID) -> RolloutView:
    """Stop for good; installs the broker has not taken yet are not sent."""
    return _change(fleet, rollout_id, "abort")


@router.post("/rollouts/{rollout_id}/tick", response_model=RolloutView)
def tick_rollout(fleet: Writes, rollout_id: uuid.UUID) -> RolloutView:
    """Run one step now (the periodic `receipts provision rollout-tick` does the same)."""
    rollouts.tick(fleet.runtime, fleet.organization_id, rollout_id)
    return get_rollout(fleet, rollout_id)
