"""Staged OTA rollouts: a canary, then waves, halted by failed installs or a drop in quality.

- `plan` (pure) orders the devices by SHA-256 of ``salt + device id`` and cuts that order at
  the cumulative percentages ``[canary_percent, *waves]`` (the last must be 100): every device
  is in exactly one wave, the canary has at least one, and the same inputs give the same plan.
- `advance(repo, rollout, now, link, ttl)` is one step, safe to run any time (the
  ``receipts provision rollout-tick`` loop, the API after each change): it takes the install
  outcomes from the ``ota`` commands' results (``succeeded`` -> updated; ``failed``,
  ``rejected``, ``expired`` -> failed), checks the two gates, and sends ``ota`` commands to the
  next wave once no install of the rollout is outstanding. Halts (state ``halted``, `reason`):
  (a) failed installs / installs sent > ``failure_threshold``; (b) over the updated devices'
  receipts since each one's update, versus the not-yet-updated devices' receipts since the
  first update, the mean field confidence or the consistency rate (share not
  ``needs_review``) is lower by more than ``quality_drop_threshold`` (only with at least
  ``min_scans`` receipts on each side). Resuming forgives the failures so far and restarts the
  quality window; aborting stops for good (unsent installs are expired).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update

from provisioning.release import Release as BuiltRelease
from server.api.errors import ApiError
from server.fleet import service
from server.fleet.models import DeviceCommand, Release, Rollout, RolloutDevice
from server.fleet.rollout_repository import (
    ACTIVE,
    Member,
    RolloutRepository,
    active_rollouts_any,
)
from server.fleet.runtime import FleetRuntime

#: Builds the artifact URL of a release valid until the given time.
Link = Callable[[Release, dt.datetime], str]
FAILED_COMMAND = frozenset({"failed", "rejected", "expired"})


# --------------------------------------------------------------------------- planner (pure)


def check_stages(canary_percent: float, waves: Sequence[float]) -> list[float]:
    stages = [float(canary_percent), *map(float, waves)]
    if any(not 0 < p <= 100 for p in stages):
        raise ValueError("percentages must be in (0, 100]")
    if any(b <= a for a, b in itertools.pairwise(stages)):
        raise ValueError("canary_percent and waves are cumulative: each larger than the last")
    if stages[-1] != 100:
        raise ValueError("the last wave must reach 100 (percent of the devices)")
    return stages


def plan(
    device_ids: Iterable[str], canary_percent: float, waves: Sequence[float], salt: str = ""
) -> list[list[str]]:
    """The devices of each wave (index 0: the canary), by a hash of the device id."""
    stages = check_stages(canary_percent, waves)
    order = sorted(
        set(device_ids), key=lambda d: (hashlib.sha256(f"{salt}\0{d}".encode()).digest(), d)
    )
    n, start, out = len(order), 0, []
    for i, pct in enumerate(stages):
        end = min(n, max(start, math.ceil(n * pct / 100 - 1e-9), 1 if i == 0 else 0))
        out.append(order[start:end])
        start = end
    return out


# --------------------------------------------------------------------------- gates (pure)


@dataclass(frozen=True)
class Quality:
    scans: int
    confidence: float  # mean over receipts of the mean confidence of their fields
    consistent: float  # share of receipts not flagged needs_review


def receipt_confidence(document: dict[str, Any]) -> float | None:
    fields = (document.get("receipt") or {}).get("fields") or {}
    values = [
        float(f["confidence"])
        for f in fields.values()
        if isinstance(f, dict) and isinstance(f.get("confidence"), int | float)
    ]
    return sum(values) / len(values) if values else None


def quality(receipts: Sequence[tuple[dict[str, Any], bool]]) -> Quality:
    if not receipts:
        return Quality(0, 0.0, 0.0)
    confs = [c for doc, _ in receipts if (c := receipt_confidence(doc)) is not None]
    return Quality(
        len(receipts),
        sum(confs) / len(confs) if confs else 0.0,
        sum(1 for _, review in receipts if not review) / len(receipts),
    )


def quality_halt(
    updated: Quality, control: Quality, threshold: float, min_scans: int
) -> str | None:
    if min(updated.scans, control.scans) < max(min_scans, 1):
        return None
    for name, new, old in (
        ("mean field confidence", updated.confidence, control.confidence),
        ("consistency rate", updated.consistent, control.consistent),
    ):
        if old - new > threshold:
            return (
                f"quality: {name} {new:.3f} on updated devices ({updated.scans} scans) vs "
                f"{old:.3f} on the others ({control.scans} scans): a drop above {threshold:g}"
            )
    return None


def failure_halt(sent: int, failed: int, threshold: float) -> str | None:
    if sent > 0 and failed / sent > threshold:
        return f"failed installs: {failed} of {sent} ({failed / sent:.0%} > {threshold:.0%})"
    return None


# --------------------------------------------------------------------------- the step


def _settle(m: Member, now: dt.datetime) -> None:
    if m.row.status != "installing" or m.command is None:
        return
    status = service.command_status(m.command, now)
    if status == "succeeded":
        m.row.status, m.row.updated_at = "updated", m.command.result_at or now
    elif status in FAILED_COMMAND:
        m.row.status = "failed"


def _quality_reason(repo: RolloutRepository, rollout: Rollout, members: list[Member]) -> str | None:
    start: dict[uuid.UUID, dt.datetime] = {}
    for m in members:
        if m.row.status == "updated" and m.row.updated_at is not None:
            floor = rollout.gates_since
            start[m.row.device_pk] = max(m.row.updated_at, floor) if floor else m.row.updated_at
    control = [m.row.device_pk for m in members if m.row.status == "pending"]
    if not start or not control:
        return None
    since = min(start.values())
    new = [
        (doc, review)
        for pk, at, doc, review in repo.receipts(list(start), since)
        if at >= start[pk]
    ]
    old = [(doc, review) for _, _, doc, review in repo.receipts(control, since)]
    return quality_halt(
        quality(new), quality(old), rollout.quality_drop_threshold, rollout.min_scans
    )


def halt(rollout: Rollout, reason: str, now: dt.datetime) -> None:
    rollout.state, rollout.reason, rollout.updated_at = "halted", reason, now


def advance(
    repo: RolloutRepository, rollout: Rollout, now: dt.datetime, link: Link, ttl: dt.timedelta
) -> list[str]:
    """One step of `rollout` (see the module docstring); returns the devices to deliver to."""
    if rollout.state not in ACTIVE:
        return []
    members = repo.members(rollout)
    for m in members:
        _settle(m, now)
    sent = [m for m in members if m.row.status != "pending"]
    failed = sum(1 for m in sent if m.row.status == "failed")
    forgiven = rollout.failures_forgiven
    reason = failure_halt(
        len(sent) - forgiven, failed - forgiven, rollout.failure_threshold
    ) or _quality_reason(repo, rollout, members)
    if reason is not None:
        halt(rollout, reason, now)
        repo.session.flush()
        return []
    if any(m.row.status == "installing" for m in members):
        repo.session.flush()
        return []
    waiting = [m for m in members if m.row.status == "pending"]
    if not waiting:
        rollout.state, rollout.reason, rollout.updated_at = "completed", None, now
        repo.session.flush()
        return []
    wave = min(m.row.wave for m in waiting)
    release = repo.release(rollout.release_id)
    assert release is not None  # a rollout's release is deleted with it (cascade)
    expires = now + ttl
    built = BuiltRelease(Path(), release.manifest.encode(), release.signature)
    args = built.ota_args(link(release, expires)).model_dump()
    targets = []
    for m in waiting:
        if m.row.wave != wave:
            continue
        command = DeviceCommand(
            id=uuid.uuid4(),
            organization_id=repo.organization_id,
            device_pk=m.row.device_pk,
            name="ota",
            args=args,
            created_at=now,
            expires_at=expires,
            status="pending",
        )
        repo.add(command)
        m.row.command_id, m.row.status = command.id, "installing"
        targets.append(m.device_id)
    rollout.state, rollout.current_wave, rollout.updated_at = "running", wave, now
    repo.session.flush()
    return targets


# --------------------------------------------------------------------------- operations


def link_for(runtime: FleetRuntime) -> Link:
    from server.fleet.releases import artifact_url

    base, key = runtime.settings.public_url, runtime.url_key
    if base is None or key is None:
        raise ApiError(
            503,
            "ota_not_configured",
            "set RM_FLEET__PUBLIC_URL and RM_SECRET_KEY: scanners need a signed artifact link",
        )
    return lambda release, expires: artifact_url(base, key, release.id, expires)


def create(
    repo: RolloutRepository,
    release_id: uuid.UUID,
    device_ids: Sequence[tuple[uuid.UUID, str]],
    settings: dict[str, Any],
    now: dt.datetime,
) -> Rollout:
    """A pending rollout of `release_id` over `device_ids` (device pk, device id)."""
    if repo.release(release_id) is None:
        raise ApiError(404, "release_not_found", f"no release {release_id} in your organisation")
    if not device_ids:
        raise ApiError(409, "no_devices", "the organisation has no active scanner to update")
    rollout = Rollout(
        id=uuid.uuid4(),
        organization_id=repo.organization_id,
        release_id=release_id,
        state="pending",
        current_wave=-1,
        failures_forgiven=0,
        created_at=now,
        updated_at=now,
        **settings,
    )
    try:
        waves = plan(
            [d for _, d in device_ids], rollout.canary_percent, rollout.waves, str(rollout.id)
        )
    except ValueError as exc:
        raise ApiError(422, "bad_waves", str(exc)) from exc
    repo.add(rollout)
    pk_of = {d: pk for pk, d in device_ids}
    for i, ids in enumerate(waves):
        for d in ids:
            repo.session.add(RolloutDevice(rollout_id=rollout.id, device_pk=pk_of[d], wave=i))
    repo.session.flush()
    return rollout


def resume(repo: RolloutRepository, rollout: Rollout, now: dt.datetime) -> None:
    if rollout.state != "halted":
        raise ApiError(409, "not_halted", f"the rollout is {rollout.state}, not halted")
    members = repo.members(rollout)
    rollout.failures_forgiven = sum(1 for m in members if m.row.status == "failed")
    rollout.state, rollout.reason, rollout.gates_since, rollout.updated_at = (
        "running",
        None,
        now,
        now,
    )
    repo.session.flush()


def abort(repo: RolloutRepository, rollout: Rollout, now: dt.datetime) -> None:
    if rollout.state in ("completed", "aborted"):
        raise ApiError(409, "finished", f"the rollout is already {rollout.state}")
    ids = [m.row.command_id for m in repo.members(rollout) if m.row.command_id is not None]
    if ids:  # installs the broker does not have yet are not sent any more
        repo.session.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id.in_(ids), DeviceCommand.published_at.is_(None))
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
    rollout.state, rollout.reason, rollout.updated_at = "aborted", "aborted by the operator", now
    repo.session.flush()


def tick(runtime: FleetRuntime, organization_id: uuid.UUID, rollout_id: uuid.UUID) -> None:
    """Advance one rollout in a transaction of its own, then publish the new installs."""
    ttl = dt.timedelta(seconds=runtime.settings.ota_command_ttl_s)
    with runtime.sessions.begin() as session:
        repo = RolloutRepository(session, organization_id)
        rollout = repo.rollout(rollout_id, for_update=True)
        if rollout is None or rollout.state not in ACTIVE:
            return
        targets = advance(repo, rollout, runtime.clock(), link_for(runtime), ttl)
    for device_id in targets:
        service.deliver(runtime, organization_id, device_id)


def tick_all(runtime: FleetRuntime) -> int:
    """Advance every pending or running rollout; returns how many there were."""
    with runtime.sessions() as session:
        active = active_rollouts_any(session)
    for org, rollout_id in active:
        tick(runtime, org, rollout_id)
    return len(active)
