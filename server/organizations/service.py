"""Registering organisations, devices and API tokens; callers own the transaction."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.protocol import validate_device_id
from server.accounts.roles import Role
from server.db.models import Device, Organization
from server.organizations.repository import OrganizationRepository

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "rm_"  # noqa: S105 (a prefix, not a secret)


class AdminError(ValueError):
    """A registration that can't be done; the message says why and what to do."""


def hash_token(token: str) -> str:
    """What is stored for a token: its SHA-256 (tokens are 256 random bits, so no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    organization_id: uuid.UUID


def create_organization(session: Session, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise AdminError("an organisation needs a non-empty name")
    repo = OrganizationRepository(session)
    if repo.get_by_name(name) is not None:
        raise AdminError(f"organisation {name!r} already exists")
    org = repo.add_organization(name)
    logger.info("created organisation %s (%s)", name, org.id)
    return org


def _require_org(repo: OrganizationRepository, name: str) -> Organization:
    org = repo.get_by_name(name)
    if org is None:
        raise AdminError(f"no organisation named {name!r}; create it first (admin create-org)")
    return org


def add_device(session: Session, organization: str, device_id: str) -> Device:
    """Register `device_id` to the organisation named `organization`."""
    try:
        validate_device_id(device_id)
    except ValueError as exc:
        raise AdminError(str(exc)) from exc
    repo = OrganizationRepository(session)
    org = _require_org(repo, organization)
    existing = repo.get_device(device_id)
    if existing is not None:
        raise AdminError(f"device {device_id!r} is already registered")
    device = repo.add_device(org.id, device_id)
    logger.info("registered device %s to organisation %s", device_id, organization)
    return device


def create_token(
    session: Session, organization: str, name: str = "", role: Role = Role.ADMIN
) -> IssuedToken:
    """A new API token for the organisation; the clear token exists only in the return value.

    `role` bounds what the token may do where endpoints check roles (the fleet: reading needs
    viewer, changing needs admin)."""
    repo = OrganizationRepository(session)
    org = _require_org(repo, organization)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    repo.add_token(org.id, hash_token(token), name, role.value)
    logger.info("issued an API token (%s) for organisation %s", role.value, organization)
    return IssuedToken(token=token, organization_id=org.id)


def organization_of_token(session: Session, token: str) -> uuid.UUID | None:
    return OrganizationRepository(session).organization_of_token(hash_token(token))


@dataclass(frozen=True)
class TokenHolder:
    """Who a live API token speaks for: its organisation, role and name (for the audit log)."""

    organization_id: uuid.UUID
    role: Role
    name: str
    token_id: uuid.UUID


def holder_of_token(session: Session, token: str) -> TokenHolder | None:
    row = OrganizationRepository(session).live_token(hash_token(token))
    if row is None:
        return None
    return TokenHolder(row.organization_id, Role(row.role), row.name, row.id)
