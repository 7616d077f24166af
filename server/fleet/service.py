"""Fleet operations of one organisation: devices and health, desired configuration, commands.

Functions take the organisation-scoped `FleetRepository` and only flush; the caller commits.
`deliver` is the exception: it runs after the change committed, in transactions of its own,
and sends what the broker does not have yet (the device's desired configuration, retained,
and its pending commands) through the `Publisher`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from models.protocol import MAX_MESSAGE_BYTES, Command, ConfigDesired, device_topic
from server.api.errors import ApiError
from server.fleet import health
from server.fleet.models import DeviceCommand, DeviceConfig
from server.fleet.publisher import PublishError
from server.fleet.repository import DeviceRow, FleetRepository
from server.fleet.runtime import FleetRuntime
from server.fleet.schemas import (
    CommandCreate,
    CommandList,
    CommandView,
    ConfigState,
    ConfigSummary,
    ConfigUpdate,
    DevicePage,
    DeviceSummary,
    FleetOverview,
    TelemetryPoint,
)

logger = logging.getLogger(__name__)

#: Devices read at once to build the overview (an organisation of resellers has thousands).
OVERVIEW_CHUNK = 1000


# --------------------------------------------------------------------------- devices, health


def _require(repo: FleetRepository, device_id: str) -> DeviceRow:
    row = repo.device(device_id)
    if row is None:
        raise ApiError(404, "device_not_found", f"no device {device_id!r} in your organisation")
    return row


def _require_active(repo: FleetRepository, device_id: str) -> DeviceRow:
    row = _require(repo, device_id)
    if _revoked(row):
        raise ApiError(
            409,
            "device_revoked",
            f"device {device_id!r} is revoked; enrol it again with a new claim code first",
        )
    return row


def _revoked(row: DeviceRow) -> bool:
    return row.account is not None and row.account.revoked_at is not None


def _state(row: DeviceRow, now: dt.datetime) -> str:
    d = row.device
    return health.device_state(
        online=d.online,
        last_seen_at=d.last_seen_at,
        telemetry=d.telemetry,
        revoked=_revoked(row),
        now=now,
    )


def _in_sync(desired: int, reported: int | None) -> bool:
    """Version 0 is "nothing set yet": a device that reported nothing is in line with it."""
    return desired in (0, reported)


def _config_summary(config: DeviceConfig | None) -> ConfigSummary:
    desired = config.desired_version if config else 0
    reported = config.reported_version if config else None
    return ConfigSummary(
        desired_version=desired,
        reported_version=reported,
        in_sync=_in_sync(desired, reported),
        rejected=dict(config.rejected or {}) if config else {},
    )


def summary(row: DeviceRow, now: dt.datetime) -> DeviceSummary:
    d = row.device
    return DeviceSummary(
        device_id=d.device_id,
        state=_state(row, now),
        last_seen_at=d.last_seen_at,
        agent_version=d.agent_version,
        model_versions=dict(d.model_versions or {}),
        telemetry=d.telemetry,
        telemetry_at=d.telemetry_at,
        config=_config_summary(row.config),
        registered_at=d.created_at,
    )


def list_devices(
    repo: FleetRepository, cursor: str | None, limit: int, now: dt.datetime
) -> DevicePage:
    """Devices by device id; the cursor is the last device id of the previous page."""
    rows = repo.devices(after=cursor, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return DevicePage(
        items=[summary(r, now) for r in page],
        next_cursor=page[-1].device.device_id if more and page else None,
    )


def get_device(repo: FleetRepository, device_id: str, now: dt.datetime) -> DeviceSummary:
    return summary(_require(repo, device_id), now)


def telemetry_history(repo: FleetRepository, device_id: str, limit: int) -> list[TelemetryPoint]:
    device = _require(repo, device_id).device
    return [
        TelemetryPoint(received_at=s.received_at, data=s.data)
        for s in repo.telemetry(device, limit)
    ]


def overview(repo: FleetRepository, now: dt.datetime, days: int) -> FleetOverview:
    healths: list[health.Health] = []
    after: str | None = None
    while True:
        rows = repo.devices(after=after, limit=OVERVIEW_CHUNK)
        for r in rows:
            d = r.device
            healths.append(
                health.Health(
                    device_id=d.device_id,
                    state=_state(r, now),
                    agent_version=d.agent_version,
                    model_versions=d.model_versions or {},
                    telemetry=d.telemetry or {},
                )
            )
        if len(rows) < OVERVIEW_CHUNK:
            break
        after = rows[-1].device.device_id
    today = now.astimezone(dt.UTC).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    since = dt.datetime.combine(day_list[0], dt.time(), dt.UTC)
    scans = dict(repo.scans_per_day(since))
    return FleetOverview(generated_at=now, **health.overview(healths, scans, day_list))


# --------------------------------------------------------------------------- configuration


def config_state(row: DeviceRow) -> ConfigState:
    c = row.config
    desired_version = c.desired_version if c else 0
    reported_version = c.reported_version if c else None
    return ConfigState(
        device_id=row.device.device_id,
        desired_version=desired_version,
        desired=dict(c.desired) if c else {},
        desired_at=c.desired_at if c else None,
        published=desired_version == 0
        or (c is not None and c.published_version == desired_version),
        reported_version=reported_version,
        reported=c.reported if c else None,
        rejected=dict(c.rejected or {}) if c else {},
        reported_at=c.reported_at if c else None,
        in_sync=_in_sync(desired_version, reported_version),
    )


def get_config(repo: FleetRepository, device_id: str) -> ConfigState:
    return config_state(_require(repo, device_id))


def set_config(
    repo: FleetRepository, device_id: str, update: ConfigUpdate, now: dt.datetime
) -> ConfigState:
    """Store a new desired configuration under the next version (locks the device's row)."""
    row = _require_active(repo, device_id)
    size = len(
        ConfigDesired(version=0, settings=update.settings).to_json()
    )  # what the device will receive
    if size > MAX_MESSAGE_BYTES // 2:
        raise ApiError(
            413,
            "config_too_large",
            f"the configuration is {size} bytes; keep it under {MAX_MESSAGE_BYTES // 2}",
        )
    config = repo.config_for_update(row.device)
    if update.base_version is not None and update.base_version != config.desired_version:
        raise ApiError(
            409,
            "version_conflict",
            f"the desired configuration is at version {config.desired_version}, not "
            f"{update.base_version}: read it again and reapply your change",
        )
    config.desired_version += 1
    config.desired = json.loads(json.dumps(update.settings))
    config.desired_at = now
    repo.session.flush()
    logger.info("desired config of %s set to version %d", device_id, config.desired_version)
    return config_state(DeviceRow(row.device, config, row.account))


# --------------------------------------------------------------------------- commands


def command_status(cmd: DeviceCommand, now: dt.datetime) -> str:
    if cmd.result_at is not None:
        return cmd.status
    if cmd.expires_at is not None and now >= cmd.expires_at:
        return "expired"
    return "sent" if cmd.published_at is not None else "pending"


def command_view(cmd: DeviceCommand, device_id: str, now: dt.datetime) -> CommandView:
    return CommandView(
        command_id=cmd.id,
        device_id=device_id,
        name=cmd.name,
        args=cmd.args,
        status=command_status(cmd, now),
        created_at=cmd.created_at,
        expires_at=cmd.expires_at,
        published_at=cmd.published_at,
        detail=cmd.detail,
        output=cmd.output,
        finished_at=cmd.finished_at,
        result_at=cmd.result_at,
    )


def create_command(
    repo: FleetRepository,
    device_id: str,
    body: CommandCreate,
    now: dt.datetime,
    default_ttl: dt.timedelta,
) -> CommandView:
    row = _require_active(repo, device_id)
    expires_at = body.expires_at or now + default_ttl
    if expires_at <= now:
        raise ApiError(422, "already_expired", "expires_at is in the past: nothing would run")
    cmd = DeviceCommand(
        id=uuid.uuid4(),
        organization_id=repo.organization_id,
        device_pk=row.device.id,
        name=body.name,
        args=json.loads(json.dumps(body.args)),
        created_at=now,
        expires_at=expires_at,
        status="pending",
    )
    if len(_command_message(cmd)) > MAX_MESSAGE_BYTES // 2:
        raise ApiError(413, "command_too_large", "the command's args are too large")
    repo.add_command(cmd)
    logger.info("command %s (%s) created for %s", cmd.id, cmd.name, device_id)
    return command_view(cmd, device_id, now)


def get_command(
    repo: FleetRepository, device_id: str, command_id: uuid.UUID, now: dt.datetime
) -> CommandView:
    row = _require(repo, device_id)
    cmd = repo.command(row.device, command_id)
    if cmd is None:
        raise ApiError(404, "command_not_found", f"no command {command_id} for {device_id!r}")
    return command_view(cmd, device_id, now)


def list_commands(
    repo: FleetRepository, device_id: str, limit: int, now: dt.datetime
) -> CommandList:
    row = _require(repo, device_id)
    return CommandList(
        items=[command_view(c, device_id, now) for c in repo.commands(row.device, limit)]
    )


def _command_message(cmd: DeviceCommand) -> bytes:
    return Command(
        command_id=cmd.id,
        name=cmd.name,
        args=cmd.args,
        issued_at=cmd.created_at,
        expires_at=cmd.expires_at,
    ).to_json()


# --------------------------------------------------------------------------- delivery


def deliver(runtime: FleetRuntime, organization_id: uuid.UUID, device_id: str) -> bool:
    """Publish the device's unpublished desired configuration and commands; True if all went.

    Runs after the change committed. The device's configuration row stays locked while
    publishing, so two concurrent deliveries publish in order and the retained message is
    always the newest version; what fails stays pending for the next delivery.
    """
    now = runtime.clock()
    with runtime.transaction(organization_id) as repo:
        row = repo.device(device_id)
        if row is None or _revoked(row):
            return False
        config = repo.config_for_update(row.device)
        if config.desired_version > 0 and config.published_version != config.desired_version:
            message = ConfigDesired(version=config.desired_version, settings=config.desired)
            try:
                runtime.publisher.publish(
                    device_topic(device_id, "config/desired"), message.to_json(), qos=1, retain=True
                )
            except PublishError as exc:
                logger.warning(
                    "config %d of %s not published: %s", config.desired_version, device_id, exc
                )
                return False
            config.published_version = config.desired_version
            repo.session.flush()
            logger.info("config %d of %s published", config.desired_version, device_id)
        for cmd in repo.unpublished_commands(row.device, now):
            try:
                runtime.publisher.publish(
                    device_topic(device_id, f"cmd/{cmd.id}"),
                    _command_message(cmd),
                    qos=1,
                    expires_at=cmd.expires_at,
                )
            except PublishError as exc:
                logger.warning("command %s to %s not published: %s", cmd.id, device_id, exc)
                return False
            repo.mark_command_published(cmd.id, runtime.clock())
            logger.info("command %s (%s) published to %s", cmd.id, cmd.name, device_id)
    return True


def clear_retained(runtime: FleetRuntime, device_id: str) -> bool:
    """Delete the broker's retained desired configuration of a removed device (an empty
    retained message); logged, never raised: a removed device can't read it anyway."""
    try:
        runtime.publisher.publish(device_topic(device_id, "config/desired"), b"", retain=True)
    except PublishError as exc:
        logger.warning("retained config of removed %s not cleared: %s", device_id, exc)
        return False
    return True


def pending_devices(repo: FleetRepository, now: dt.datetime) -> list[str]:
    """Device ids of the organisation with something not yet published (for `republish`)."""
    out = []
    for row in repo.devices():
        c = row.config
        if _revoked(row):
            continue
        if (
            c is not None and c.desired_version > 0 and c.published_version != c.desired_version
        ) or repo.unpublished_commands(row.device, now):
            out.append(row.device.device_id)
    return out
