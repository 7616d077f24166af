"""Database access of the fleet (the only SQLAlchemy here).

- `SqlClaimStore`: `provisioning.claims.ClaimStore` on the `claim_codes` table, with the atomic
  compare-and-set `mark_used` the protocol demands.
- `RegistryRepository`: enrolment and the broker's view of the registry (not scoped: the claim
  endpoint, the operator's CLI and the broker sync act across organisations).
- `FleetRepository`: what an organisation may see and change of its own scanners; build it only
  through the API's dependency (`server.fleet.endpoints`), which binds the organisation.
- `DeviceReportRepository`: what ingest writes for one device's reports (telemetry history,
  reported configuration, command results), keyed by the device the topic named.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from provisioning.ca import Revocation
from provisioning.claims import ClaimRecord
from provisioning.credentials import BrokerAccount as AccountSpec
from provisioning.credentials import Role
from server.db.models import Device, Organization, Receipt
from server.fleet.models import (
    BrokerAccount,
    ClaimCode,
    DeviceCertificate,
    DeviceCommand,
    DeviceConfig,
    TelemetrySample,
)

#: A command result that reports a step, not the outcome: a later result may replace it.
IN_PROGRESS = "in_progress"

# --------------------------------------------------------------------------- claim codes


class SqlClaimStore:
    """Claim codes in the database; the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: ClaimRecord) -> None:
        self.session.add(
            ClaimCode(
                code_hash=record.code_hash,
                organization_id=uuid.UUID(record.organization_id),
                label=record.label,
                created_at=record.created_at,
                expires_at=record.expires_at,
                used_at=record.used_at,
                device_id=record.device_id,
            )
        )
        self.session.flush()  # a duplicate code_hash raises IntegrityError here

    def get(self, code_hash: str) -> ClaimRecord | None:
        row = self.session.scalar(select(ClaimCode).where(ClaimCode.code_hash == code_hash))
        return None if row is None else _claim_record(row)

    def mark_used(self, code_hash: str, device_id: str, used_at: dt.datetime) -> bool:
        """Compare-and-set: only the first of two racing redemptions updates the row."""
        result = self.session.execute(
            update(ClaimCode)
            .where(ClaimCode.code_hash == code_hash, ClaimCode.used_at.is_(None))
            .values(used_at=used_at, device_id=device_id)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def of_organization(self, organization_id: uuid.UUID) -> Sequence[ClaimRecord]:
        rows = self.session.scalars(
            select(ClaimCode)
            .where(ClaimCode.organization_id == organization_id)
            .order_by(ClaimCode.created_at.desc())
        )
        return [_claim_record(r) for r in rows]


def _claim_record(row: ClaimCode) -> ClaimRecord:
    return ClaimRecord(
        code_hash=row.code_hash,
        organization_id=str(row.organization_id),
        created_at=row.created_at,
        expires_at=row.expires_at,
        label=row.label,
        used_at=row.used_at,
        device_id=row.device_id,
    )


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RegisteredDevice:
    """A device with its organisation's name and its broker account's state."""

    device: Device
    organization: str
    account: BrokerAccount | None

    @property
    def revoked(self) -> bool:
        return self.account is not None and self.account.revoked_at is not None


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(model)
    if dialect == "sqlite":
        return sqlite_insert(model)
    raise RuntimeError(f"database {dialect!r} is not supported: use PostgreSQL or SQLite")


class RegistryRepository:
    """Devices, broker accounts and certificates across organisations."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def organization_by_name(self, name: str) -> Organization | None:
        return self.session.scalar(select(Organization).where(Organization.name == name))

    def organization_ids(self) -> list[uuid.UUID]:
        return list(self.session.scalars(select(Organization.id).order_by(Organization.name)))

    def device(self, device_id: str, *, for_update: bool = False) -> Device | None:
        q = select(Device).where(Device.device_id == device_id)
        if for_update:
            q = q.with_for_update()
        return self.session.scalar(q)

    def add_device(self, organization_id: uuid.UUID, device_id: str) -> Device:
        device = Device(organization_id=organization_id, device_id=device_id)
        self.session.add(device)
        self.session.flush()
        return device

    def devices(self, organization_id: uuid.UUID | None = None) -> Sequence[RegisteredDevice]:
        q = (
            select(Device, Organization.name, BrokerAccount)
            .join(Organization, Organization.id == Device.organization_id)
            .outerjoin(BrokerAccount, BrokerAccount.device_pk == Device.id)
            .order_by(Organization.name, Device.device_id)
        )
        if organization_id is not None:
            q = q.where(Device.organization_id == organization_id)
        return [RegisteredDevice(d, o, a) for d, o, a in self.session.execute(q)]

    def account_of_device(self, device_pk: uuid.UUID) -> BrokerAccount | None:
        return self.session.scalar(
            select(BrokerAccount).where(BrokerAccount.device_pk == device_pk)
        )

    def account(self, username: str) -> BrokerAccount | None:
        return self.session.scalar(select(BrokerAccount).where(BrokerAccount.username == username))

    def set_account(
        self, spec: AccountSpec, at: dt.datetime, device_pk: uuid.UUID | None = None
    ) -> BrokerAccount:
        """Create or replace the account `spec.username` (a new password un-revokes it)."""
        row = self.account(spec.username)
        if row is None:
            row = BrokerAccount(
                username=spec.username,
                password_hash=spec.password_hash,
                role=spec.role.value,
                device_pk=device_pk,
                created_at=at,
                updated_at=at,
            )
            self.session.add(row)
        else:
            row.password_hash = spec.password_hash
            row.role = spec.role.value
            row.device_pk = device_pk
            row.updated_at = at
            row.revoked_at = None
        self.session.flush()
        return row

    def revoke_account(self, device_pk: uuid.UUID, at: dt.datetime) -> bool:
        result = self.session.execute(
            update(BrokerAccount)
            .where(BrokerAccount.device_pk == device_pk, BrokerAccount.revoked_at.is_(None))
            .values(revoked_at=at, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def active_accounts(self) -> list[AccountSpec]:
        """Every account the broker should let in, ordered by username."""
        rows = self.session.scalars(
            select(BrokerAccount)
            .where(BrokerAccount.revoked_at.is_(None))
            .order_by(BrokerAccount.username)
        )
        return [AccountSpec(r.username, r.password_hash, Role(r.role)) for r in rows]

    def add_certificate(
        self, device_pk: uuid.UUID, serial: int, not_after: dt.datetime, pem: str, at: dt.datetime
    ) -> None:
        self.session.add(
            DeviceCertificate(
                device_pk=device_pk,
                serial=format(serial, "x"),
                not_after=not_after,
                certificate_pem=pem,
                created_at=at,
            )
        )
        self.session.flush()

    def revoke_certificates(self, device_pk: uuid.UUID, at: dt.datetime) -> int:
        result = self.session.execute(
            update(DeviceCertificate)
            .where(DeviceCertificate.device_pk == device_pk, DeviceCertificate.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def revocations(self, now: dt.datetime) -> list[Revocation]:
        """Revoked certificates that have not expired yet (expired ones need no CRL entry)."""
        rows = self.session.execute(
            select(DeviceCertificate.serial, DeviceCertificate.revoked_at)
            .where(DeviceCertificate.revoked_at.is_not(None), DeviceCertificate.not_after > now)
            .order_by(DeviceCertificate.serial)
        )
        return [Revocation(int(serial, 16), at) for serial, at in rows if at is not None]

    def ensure_config(self, device_pk: uuid.UUID, organization_id: uuid.UUID) -> None:
        """Give the device its (empty, version 0) configuration row if it has none."""
        stmt = (
            _insert(self.session, DeviceConfig)
            .values(
                device_pk=device_pk,
                organization_id=organization_id,
                desired_version=0,
                desired={},
            )
            .on_conflict_do_nothing(index_elements=["device_pk"])
        )
        self.session.execute(stmt)


# --------------------------------------------------------------------------- one organisation


@dataclass(frozen=True)
class DeviceRow:
    """A device of the organisation with its configuration and broker account."""

    device: Device
    config: DeviceConfig | None
    account: BrokerAccount | None


class FleetRepository:
    """One organisation's scanners; every query is scoped by `organization_id`."""

    def __init__(self, session: Session, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def _devices(self) -> Select[Device, DeviceConfig, BrokerAccount]:
        return (
            select(Device, DeviceConfig, BrokerAccount)
            .outerjoin(DeviceConfig, DeviceConfig.device_pk == Device.id)
            .outerjoin(BrokerAccount, BrokerAccount.device_pk == Device.id)
            .where(Device.organization_id == self.organization_id, Device.removed_at.is_(None))
        )

    def devices(self, *, after: str | None = None, limit: int | None = None) -> list[DeviceRow]:
        """Devices ordered by device id, those after `after` (a device id), at most `limit`."""
        q = self._devices().order_by(Device.device_id)
        if after is not None:
            q = q.where(Device.device_id > after)
        if limit is not None:
            q = q.limit(limit)
        return [DeviceRow(d, c, a) for d, c, a in self.session.execute(q)]

    def device(self, device_id: str) -> DeviceRow | None:
        row = self.session.execute(self._devices().where(Device.device_id == device_id)).first()
        return None if row is None else DeviceRow(row[0], row[1], row[2])

    def config_for_update(self, device: Device) -> DeviceConfig:
        """The device's configuration row, created if missing, locked until commit."""
        RegistryRepository(self.session).ensure_config(device.id, device.organization_id)
        config = self.session.scalar(
            select(DeviceConfig)
            .where(
                DeviceConfig.device_pk == device.id,
                DeviceConfig.organization_id == self.organization_id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert config is not None
        return config

    def add_command(self, command: DeviceCommand) -> DeviceCommand:
        if command.organization_id != self.organization_id:
            raise ValueError("a command must belong to the repository's organisation")
        self.session.add(command)
        self.session.flush()
        return command

    def command(self, device: Device, command_id: uuid.UUID) -> DeviceCommand | None:
        return self.session.scalar(
            select(DeviceCommand).where(
                DeviceCommand.id == command_id,
                DeviceCommand.device_pk == device.id,
                DeviceCommand.organization_id == self.organization_id,
            )
        )

    def commands(self, device: Device, limit: int) -> Sequence[DeviceCommand]:
        return self.session.scalars(
            select(DeviceCommand)
            .where(
                DeviceCommand.device_pk == device.id,
                DeviceCommand.organization_id == self.organization_id,
            )
            .order_by(DeviceCommand.created_at.desc(), DeviceCommand.id)
            .limit(limit)
        ).all()

    def unpublished_commands(self, device: Device, now: dt.datetime) -> Sequence[DeviceCommand]:
        """Commands still to send: not published, no result, not expired; oldest first."""
        return self.session.scalars(
            select(DeviceCommand)
            .where(
                DeviceCommand.device_pk == device.id,
                DeviceCommand.organization_id == self.organization_id,
                DeviceCommand.published_at.is_(None),
                DeviceCommand.result_at.is_(None),
                (DeviceCommand.expires_at.is_(None)) | (DeviceCommand.expires_at > now),
            )
            .order_by(DeviceCommand.created_at)
        ).all()

    def mark_command_published(self, command_id: uuid.UUID, at: dt.datetime) -> None:
        self.session.execute(
            update(DeviceCommand)
            .where(
                DeviceCommand.id == command_id,
                DeviceCommand.organization_id == self.organization_id,
                DeviceCommand.published_at.is_(None),
            )
            .values(published_at=at)
            .execution_options(synchronize_session=False)
        )

    def telemetry(self, device: Device, limit: int) -> Sequence[TelemetrySample]:
        """The device's latest heartbeats, newest first."""
        return self.session.scalars(
            select(TelemetrySample)
            .where(
                TelemetrySample.device_pk == device.id,
                TelemetrySample.organization_id == self.organization_id,
            )
            .order_by(TelemetrySample.seq.desc())
            .limit(limit)
        ).all()

    def scans_per_day(self, since: dt.datetime) -> list[tuple[dt.date, int]]:
        """Receipts captured per UTC day from `since` on, oldest day first."""
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            day: Any = func.date(func.timezone("UTC", Receipt.captured_at))
        else:  # SQLite stores UTC text: its date() is the UTC day
            day = func.date(Receipt.captured_at)
        rows = self.session.execute(
            select(day.label("day"), func.count())
            .where(Receipt.organization_id == self.organization_id, Receipt.captured_at >= since)
            .group_by(day)
            .order_by(day)
        )
        out = []
        for d, n in rows:
            out.append((d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)), int(n)))
        return out


# --------------------------------------------------------------------------- ingest's writes


@dataclass(frozen=True)
class Sample:
    """One heartbeat to keep in a device's history."""

    device_pk: uuid.UUID
    organization_id: uuid.UUID
    received_at: dt.datetime
    data: dict[str, Any]


class DeviceReportRepository:
    """Writes of ingest for what devices report; the caller (one batch) owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add_telemetry(self, samples: Sequence[Sample], keep: int) -> None:
        """Append `samples` to their devices' histories and prune each to its last `keep`."""
        if not samples:
            return
        devices = {s.device_pk for s in samples}
        rows_max = self.session.execute(
            select(TelemetrySample.device_pk, func.max(TelemetrySample.seq))
            .where(TelemetrySample.device_pk.in_(devices))
            .group_by(TelemetrySample.device_pk)
        )
        last: dict[uuid.UUID, int] = {row[0]: row[1] for row in rows_max}
        rows = []
        for s in samples:
            seq = (last.get(s.device_pk) or 0) + 1
            last[s.device_pk] = seq
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": s.received_at,
                    "device_pk": s.device_pk,
                    "organization_id": s.organization_id,
                    "seq": seq,
                    "received_at": s.received_at,
                    "data": s.data,
                }
            )
        self.session.execute(_insert(self.session, TelemetrySample), rows)
        prune = (
            delete(TelemetrySample)
            .where(
                TelemetrySample.device_pk == bindparam("pk"),
                TelemetrySample.seq <= bindparam("cut"),
            )
            .execution_options(synchronize_session=False)
        )
        cuts = [{"pk": pk, "cut": seq - keep} for pk, seq in last.items() if seq > keep]
        if cuts:
            self.session.connection().execute(prune, cuts)

    def apply_config_report(
        self,
        device_pk: uuid.UUID,
        organization_id: uuid.UUID,
        *,
        version: int,
        settings: dict[str, Any],
        rejected: dict[str, str],
        at: dt.datetime,
    ) -> bool:
        """Store a report unless a newer version was already reported (a late redelivery)."""
        RegistryRepository(self.session).ensure_config(device_pk, organization_id)
        result = self.session.execute(
            update(DeviceConfig)
            .where(
                DeviceConfig.device_pk == device_pk,
                DeviceConfig.reported_version.is_(None)
                | (DeviceConfig.reported_version <= version),
            )
            .values(reported_version=version, reported=settings, rejected=rejected, reported_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_command_result(
        self,
        device_pk: uuid.UUID,
        command_id: uuid.UUID,
        values: dict[str, Any],
    ) -> str:
        """Store a command's result: ``recorded``, ``ignored`` or ``unknown``.

        A progress report (``in_progress``) is stored until a later result replaces it; the
        first final result replaces it and is never replaced itself (a late progress report or
        a repeated final result is ``ignored``). One conditional UPDATE, so concurrent results
        for one command cannot both win.
        """
        result = self.session.execute(
            update(DeviceCommand)
            .where(
                DeviceCommand.id == command_id,
                DeviceCommand.device_pk == device_pk,
                DeviceCommand.result_at.is_(None) | (DeviceCommand.status == IN_PROGRESS),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return "recorded"
        exists = self.session.scalar(
            select(func.count())
            .select_from(DeviceCommand)
            .where(DeviceCommand.id == command_id, DeviceCommand.device_pk == device_pk)
        )
        return "ignored" if exists else "unknown"
