"""The fleet's tables: claim codes, broker accounts, certificates, config, commands, telemetry.

A device's row stays in `server.db.models.Device` (identity, organisation, online state and the
latest telemetry snapshot, written by ingest); what the fleet service adds lives here, in
tables keyed by the device's primary key. Over-the-air rollouts add releases, rollouts and
per-device rollout state; an install is delivered as a `DeviceCommand` (name ``install``), so
those tables only need to point at commands and devices.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import models as _core  # noqa: F401  (devices and organizations, referred to)
from server.db.base import Base, RecordModel, utcnow
from server.db.types import JsonDoc


class ClaimCode(RecordModel):
    """A one-time claim code of an organisation; only the SHA-256 of the code is stored."""

    __tablename__ = "claim_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    device_id: Mapped[str | None] = mapped_column(
        String(64), default=None, comment="The device id that redeemed the code."
    )


class BrokerAccount(RecordModel):
    """A broker user: a device (username = device id) or a server service (username '_...').

    Only Mosquitto's ``$7$`` hash of the password is stored. A revoked account is kept (for
    the record) but left out of the broker's password file.
    """

    __tablename__ = "broker_accounts"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), comment="device or ingest")
    device_pk: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), unique=True, default=None
    )
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DeviceCertificate(RecordModel):
    """A client certificate the CA issued to a device; revoked ones go into the CRL."""

    __tablename__ = "device_certificates"

    device_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    serial: Mapped[str] = mapped_column(String(64), unique=True, comment="Hexadecimal.")
    not_after: Mapped[dt.datetime]
    certificate_pem: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DeviceConfig(Base):
    """A device's shadow: the desired configuration (versioned) and what it reported."""

    __tablename__ = "device_configs"

    device_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    desired: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    desired_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    published_version: Mapped[int | None] = mapped_column(
        Integer, default=None, comment="The desired version the broker last acknowledged."
    )
    reported_version: Mapped[int | None] = mapped_column(Integer, default=None)
    reported: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    rejected: Mapped[dict[str, Any] | None] = mapped_column(
        JsonDoc, default=None, comment="Setting -> the device's reason for refusing it."
    )
    reported_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DeviceCommand(Base):
    """A command sent to one device; `id` is the command id of the protocol."""

    __tablename__ = "device_commands"
    __table_args__ = (Index("ix_device_commands_device_created", "device_pk", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    device_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(
        String(16), default="pending", comment="pending, succeeded, failed, rejected, expired."
    )
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    output: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    result_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class TelemetrySample(RecordModel):
    """One heartbeat kept in a device's bounded history (pruned as new ones arrive)."""

    __tablename__ = "device_telemetry"
    __table_args__ = (Index("ix_device_telemetry_device_seq", "device_pk", "seq"),)

    device_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(
        BigInteger, comment="Per device, increasing: pruning keeps the last N by it."
    )
    received_at: Mapped[dt.datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc)


class Release(RecordModel):
    """A signed release an organisation uploaded; the artifact lives in the releases folder."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64), comment="The manifest's release name.")
    kind: Mapped[str] = mapped_column(String(16), comment="models or agent.")
    manifest: Mapped[str] = mapped_column(Text, comment="The manifest's exact (signed) text.")
    signature: Mapped[str] = mapped_column(Text, comment="Base64 Ed25519 over the manifest.")
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    artifact_sha256: Mapped[str] = mapped_column(String(64), comment="Also its file name.")


class Rollout(RecordModel):
    """A staged rollout of a release: canary, waves, halt thresholds and its state."""

    __tablename__ = "rollouts"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    canary_percent: Mapped[float]
    waves: Mapped[list[Any]] = mapped_column(JsonDoc, comment="Cumulative percentages.")
    failure_threshold: Mapped[float] = mapped_column(comment="Largest share of failed installs.")
    quality_drop_threshold: Mapped[float]
    min_scans: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(
        String(16), comment="pending, running, halted, completed, aborted."
    )
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    current_wave: Mapped[int] = mapped_column(Integer, default=-1)
    gates_since: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="Resumed at: earlier failures and receipts no longer count."
    )
    failures_forgiven: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RolloutDevice(Base):
    """One device of a rollout: its wave, its install command and the outcome."""

    __tablename__ = "rollout_devices"

    rollout_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True
    )
    device_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    wave: Mapped[int] = mapped_column(Integer, comment="0 is the canary.")
    status: Mapped[str] = mapped_column(
        String(16), default="pending", comment="pending, installing, updated, failed."
    )
    command_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("device_commands.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="When its install succeeded (its receipts count from here)."
    )
