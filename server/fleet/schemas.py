"""What the fleet API accepts and returns."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DeviceState = Literal["online", "stale", "offline", "revoked"]
CommandStatus = Literal[
    "pending", "sent", "in_progress", "succeeded", "failed", "rejected", "expired"
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- claim


class ClaimRequest(_In):
    """What a scanner sends at first boot (firmware/firstboot.py)."""

    claim_code: str = Field(max_length=64, description="The code from the boot folder or QR.")
    device_id: str = Field(max_length=64, description="The scanner's id (its MQTT username).")
    csr_pem: str | None = Field(
        default=None,
        max_length=8192,
        description="PEM CSR of the scanner's own EC P-256 key; its certificate comes back.",
    )


class ClaimReply(BaseModel):
    device_id: str
    username: str = Field(description="Broker user name (= device id).")
    password: str = Field(description="Broker password: shown this once, only its hash is kept.")
    certificate_pem: str | None = Field(
        description="Client certificate signed by the deployment's CA, if a CSR was sent and "
        "the server has a CA."
    )


class ClaimRefusal(BaseModel):
    """A refused claim: `code` is stable (malformed, checksum, unknown, expired, used,
    invalid_device_id, invalid_csr, device_taken)."""

    code: str
    detail: str


# --------------------------------------------------------------------------- devices


class ConfigSummary(BaseModel):
    desired_version: int
    reported_version: int | None
    in_sync: bool = Field(description="The device reported the version the server wants.")
    rejected: dict[str, str] = Field(description="Settings the device refused, with reasons.")


class DeviceSummary(BaseModel):
    device_id: str
    state: DeviceState = Field(
        description="online; stale (silent > 2x its heartbeat interval); offline; revoked."
    )
    last_seen_at: dt.datetime | None
    agent_version: str | None
    model_versions: dict[str, Any]
    telemetry: dict[str, Any] | None = Field(description="The latest heartbeat.")
    telemetry_at: dt.datetime | None
    config: ConfigSummary
    registered_at: dt.datetime


class DevicePage(BaseModel):
    items: list[DeviceSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class TelemetryPoint(BaseModel):
    received_at: dt.datetime
    data: dict[str, Any]


# --------------------------------------------------------------------------- overview


class DeviceCounts(BaseModel):
    total: int
    online: int
    stale: int
    offline: int
    revoked: int


class DayCount(BaseModel):
    date: dt.date
    count: int


class QueueDepth(BaseModel):
    total: int = Field(description="Receipts waiting in the outboxes of reporting devices.")
    max: int | None
    backlogged: int = Field(description="Reporting devices with a non-empty outbox.")


class Distribution(BaseModel):
    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


class Temperatures(Distribution):
    hot: int = Field(description="Devices at or above 80 °C.")


class FleetOverview(BaseModel):
    """Counts by state and the figures of the latest heartbeats of online and stale devices."""

    generated_at: dt.datetime
    devices: DeviceCounts
    scans_per_day: list[DayCount] = Field(description="Receipts captured per UTC day.")
    queue_depth: QueueDepth
    inference_ms: Distribution = Field(description="Latest read time of each device (ms).")
    temperature_c: Temperatures
    agent_versions: dict[str, int]
    model_versions: dict[str, dict[str, int]] = Field(description="model -> version -> devices")


# --------------------------------------------------------------------------- configuration


class ConfigUpdate(_In):
    """The whole desired configuration (it replaces the previous one)."""

    settings: dict[str, Any] = Field(
        description="Setting -> value, e.g. trigger sensitivity, OCR threads, image upload, "
        "quiet hours; the scanner validates them and reports what it refused."
    )
    base_version: int | None = Field(
        default=None,
        ge=0,
        description="If given, the update is refused (409) unless it is the current desired "
        "version: protects against overwriting someone else's change.",
    )


class ConfigState(BaseModel):
    device_id: str
    desired_version: int
    desired: dict[str, Any]
    desired_at: dt.datetime | None
    published: bool = Field(description="The broker holds the current desired version.")
    reported_version: int | None
    reported: dict[str, Any] | None
    rejected: dict[str, str]
    reported_at: dt.datetime | None
    in_sync: bool


# --------------------------------------------------------------------------- commands

_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"


class CommandCreate(_In):
    name: str = Field(
        pattern=_NAME,
        description="e.g. reboot, restart_agent, rescan_last, upload_diagnostics, "
        "test_feedback, purge_outbox; the scanner rejects names it does not know.",
    )
    args: dict[str, Any] = Field(default_factory=dict)
    expires_at: dt.datetime | None = Field(
        default=None, description="Not acted on after this; default: in one hour."
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expires_at must carry a time zone (ISO 8601 with offset)")
        return v


class CommandView(BaseModel):
    command_id: uuid.UUID
    device_id: str
    name: str
    args: dict[str, Any]
    status: CommandStatus = Field(
        description="pending (not yet at the broker), sent, in_progress (the device's latest "
        "progress report: output.stage), then the device's outcome; expired when no result "
        "came before expires_at."
    )
    created_at: dt.datetime
    expires_at: dt.datetime | None
    published_at: dt.datetime | None
    detail: str | None
    output: dict[str, Any] | None
    finished_at: dt.datetime | None
    result_at: dt.datetime | None


class CommandList(BaseModel):
    items: list[CommandView]


class ClaimCodeCreate(BaseModel):
    """A new one-time claim code for the caller's organisation."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: int = Field(
        default=30 * 24 * 3600, ge=60, le=365 * 24 * 3600, description="Validity in seconds."
    )
    label: str = Field(default="", max_length=200, description="A note, e.g. which shop.")


class ClaimCodeIssued(BaseModel):
    code: str = Field(description="Shown this once; only its hash is kept.")
    expires_at: dt.datetime
    label: str


class DeviceRemoved(BaseModel):
    """What removing a scanner did; its receipts stay (see `server.fleet.removal`)."""

    device_id: str
    removed_at: dt.datetime
    receipts_kept: int
    deleted: dict[str, int] = Field(description="Rows deleted, by table.")
