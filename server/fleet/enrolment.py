"""Enrolment: claim codes, a scanner's claim, credential rotation, revocation.

Every function works inside the caller's transaction and only flushes. After the commit, the
caller mirrors the registry to the broker (`BrokerSync.sync`, via `FleetRuntime.sync_broker`):
a claimed device can connect from then on, a revoked one is cut off.

Errors are `EnrolmentError` with a stable `code`, an HTTP status and a sentence for a person.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.protocol import validate_device_id
from provisioning.ca import CaError, CertificateAuthority, IssuedCertificate
from provisioning.claims import DEFAULT_TTL, ClaimError, ClaimService, IssuedClaim
from provisioning.credentials import (
    INGEST_USERNAME,
    DeviceCredentials,
    new_device_account,
    new_ingest_account,
)
from server.db.models import Device
from server.fleet.repository import RegisteredDevice, RegistryRepository, SqlClaimStore

logger = logging.getLogger(__name__)

#: HTTP status of each claim refusal.
_CLAIM_STATUS = {"malformed": 400, "checksum": 400, "unknown": 404, "expired": 410, "used": 409}


class EnrolmentError(ValueError):
    """A refused enrolment step; `code` is stable, `status` the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Enrolled:
    """What a device is handed once: its broker credentials and, maybe, its certificate."""

    device: Device
    credentials: DeviceCredentials
    certificate: IssuedCertificate | None


def _organization_id(repo: RegistryRepository, organization: str) -> uuid.UUID:
    org = repo.organization_by_name(organization)
    if org is None:
        raise EnrolmentError(
            "unknown_organization",
            f"no organisation named {organization!r}; create it first (receipts admin create-org)",
            404,
        )
    return org.id


def create_claim_code(
    session: Session,
    organization: str,
    *,
    ttl: dt.timedelta = DEFAULT_TTL,
    label: str = "",
    clock: Callable[[], dt.datetime] = _utcnow,
) -> IssuedClaim:
    """A single-use claim code for the organisation named `organization`."""
    org_id = _organization_id(RegistryRepository(session), organization)
    return create_claim_code_for(session, org_id, ttl=ttl, label=label, clock=clock)


def create_claim_code_for(
    session: Session,
    organization_id: uuid.UUID,
    *,
    ttl: dt.timedelta = DEFAULT_TTL,
    label: str = "",
    clock: Callable[[], dt.datetime] = _utcnow,
) -> IssuedClaim:
    """A single-use claim code for the organisation `organization_id` (the API's caller's)."""
    try:
        issued = ClaimService(SqlClaimStore(session), clock).create(
            str(organization_id), ttl, label
        )
    except ValueError as exc:
        raise EnrolmentError("invalid_claim", str(exc)) from exc
    logger.info(
        "claim code created for %s (expires %s)",
        organization_id,
        issued.record.expires_at.isoformat(),
    )
    return issued


def _credentials(
    repo: RegistryRepository,
    device: Device,
    ca: CertificateAuthority | None,
    csr_pem: bytes | None,
    now: dt.datetime,
    *,
    issue_key: bool = False,
) -> Enrolled:
    """New password (old one stops working), old certificates revoked, a new one if asked."""
    certificate = None
    if ca is not None and (csr_pem is not None or issue_key):
        try:
            certificate = (
                ca.sign_device_csr(device.device_id, csr_pem)
                if csr_pem is not None
                else ca.issue_device(device.device_id)
            )
        except CaError as exc:
            raise EnrolmentError("invalid_csr", str(exc)) from exc
    account, credentials = new_device_account(device.device_id)
    repo.set_account(account, now, device_pk=device.id)
    repo.revoke_certificates(device.id, now)
    if certificate is not None:
        repo.add_certificate(
            device.id,
            certificate.serial,
            certificate.certificate.not_valid_after_utc,
            certificate.cert_pem.decode("ascii"),
            now,
        )
    repo.ensure_config(device.id, device.organization_id)
    return Enrolled(device, credentials, certificate)


def claim(
    session: Session,
    ca: CertificateAuthority | None,
    *,
    claim_code: str,
    device_id: str,
    csr_pem: str | None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> Enrolled:
    """Redeem `claim_code` for `device_id`: bind it to the code's organisation, issue credentials.

    A device already registered to that organisation is re-enrolled (a re-flashed scanner; its
    old password and certificates stop working); one of another organisation is refused.
    If anything fails the caller rolls back, and the code stays unused.
    """
    try:
        validate_device_id(device_id)
    except ValueError as exc:
        raise EnrolmentError("invalid_device_id", str(exc)) from exc
    try:
        record = ClaimService(SqlClaimStore(session), clock).redeem(claim_code, device_id)
    except ClaimError as exc:
        raise EnrolmentError(exc.code, str(exc), _CLAIM_STATUS.get(exc.code, 400)) from exc
    org_id = uuid.UUID(record.organization_id)
    repo = RegistryRepository(session)
    device = repo.device(device_id, for_update=True)
    if device is None:
        device = repo.add_device(org_id, device_id)
    elif device.organization_id != org_id:
        raise EnrolmentError(
            "device_taken",
            f"device {device_id!r} belongs to another organisation (a removed scanner keeps "
            "its id for its receipts); give this scanner another id",
            409,
        )
    if device.removed_at is not None:  # removed by its owner, now enrolled again
        device.removed_at = None
    csr = csr_pem.encode("ascii", "replace") if csr_pem else None
    enrolled = _credentials(repo, device, ca, csr, clock())
    logger.info(
        "device %s claimed by organisation %s%s",
        device_id,
        org_id,
        " with a client certificate" if enrolled.certificate else "",
    )
    return enrolled


def _require_device(repo: RegistryRepository, device_id: str) -> Device:
    device = repo.device(device_id, for_update=True)
    if device is None or device.removed_at is not None:
        raise EnrolmentError(
            "device_not_found", f"no device {device_id!r}; see receipts provision list-devices", 404
        )
    return device


def rotate(
    session: Session,
    device_id: str,
    ca: CertificateAuthority | None,
    *,
    with_certificate: bool = False,
    organization_id: uuid.UUID | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> Enrolled:
    """New credentials for a registered device; the old password and certificates stop working.

    With `with_certificate` (and a CA) the server also makes a new key and certificate for it
    (the key then travels with the password: write them to its boot folder). Scoped to an
    organisation if given.
    """
    repo = RegistryRepository(session)
    device = _require_device(repo, device_id)
    if organization_id is not None and device.organization_id != organization_id:
        raise EnrolmentError(
            "device_not_found", f"no device {device_id!r} in your organisation", 404
        )
    enrolled = _credentials(repo, device, ca, None, clock(), issue_key=with_certificate)
    logger.info("credentials of device %s rotated", device_id)
    return enrolled


def revoke(
    session: Session,
    device_id: str,
    *,
    organization_id: uuid.UUID | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> Device:
    """Revoke the device's broker account and certificates (scoped to an organisation if given).

    Its receipts stay. It can come back only by a new claim (the owner's new code) or rotation.
    """
    repo = RegistryRepository(session)
    device = _require_device(repo, device_id)
    if organization_id is not None and device.organization_id != organization_id:
        raise EnrolmentError(
            "device_not_found", f"no device {device_id!r} in your organisation", 404
        )
    now = clock()
    accounts = repo.revoke_account(device.id, now)
    certificates = repo.revoke_certificates(device.id, now)
    if not accounts:
        # No account yet (registered, never claimed): keep a revoked one so the state is explicit.
        account, _ = new_device_account(device_id)
        repo.set_account(account, now, device_pk=device.id)
        repo.revoke_account(device.id, now)
    logger.info("device %s revoked (%d certificates)", device_id, certificates)
    return device


def organization_ids(session: Session, organization: str | None = None) -> list[uuid.UUID]:
    """The id of the organisation named `organization`, or of every organisation."""
    repo = RegistryRepository(session)
    if organization is not None:
        return [_organization_id(repo, organization)]
    return repo.organization_ids()


def list_devices(session: Session, organization: str | None = None) -> Sequence[RegisteredDevice]:
    repo = RegistryRepository(session)
    org_id = _organization_id(repo, organization) if organization else None
    return repo.devices(org_id)


def service_account(
    session: Session, username: str = INGEST_USERNAME, clock: Callable[[], dt.datetime] = _utcnow
) -> DeviceCredentials:
    """Create or rotate the server's own broker account (ingest and API publisher)."""
    try:
        account, credentials = new_ingest_account(username)
    except ValueError as exc:
        raise EnrolmentError("invalid_username", str(exc)) from exc
    RegistryRepository(session).set_account(account, clock())
    logger.info("service account %s set", username)
    return credentials
