"""Who may do what to the fleet: the caller's role, taken from its bearer token.

Every fleet route depends on one of the two guards here, so a route cannot forget its check:
- `FleetReader` (``READ``: viewer and up): devices, health, configuration, commands, releases
  and rollouts, read only;
- `FleetManager` (``MANAGE``: admin and up): claim codes, revoke, rotate, remove, configuration,
  commands, releases and rollouts.
A token below the needed role gets 403 ``insufficient_role``; the scanners' own routes (the
claim, the signed artifact link) take no token and have no role.

Roles are those of dashboard users (`server.accounts.roles`); an API token carries one
(``receipts admin create-token ORG --role viewer``; tokens made before roles existed are admin).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials

from server.accounts.audit import Actor
from server.accounts.roles import Role
from server.api.deps import DbSession, Organization, _bearer
from server.api.errors import ApiError
from server.organizations.service import holder_of_token

#: The least role that may read the fleet, and the least that may change it.
READ = Role.VIEWER
MANAGE = Role.ADMIN

#: The stable error code of a caller whose role is too low.
INSUFFICIENT_ROLE = "insufficient_role"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the fleet API: its organisation, role and audit identity."""

    organization_id: uuid.UUID
    role: Role
    actor: Actor


def fleet_caller(
    session: DbSession,
    organization: Organization,  # 401s (missing, unknown or revoked token) come from here
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    holder = holder_of_token(session, credentials.credentials) if credentials else None
    if holder is None or holder.organization_id != organization:  # revoked in between
        raise ApiError(401, "invalid_token", "the token is unknown or revoked")
    label = f"api-token:{holder.name or holder.token_id}"
    return Caller(organization, holder.role, Actor.system(label))


def require(caller: Caller, role: Role) -> Caller:
    if not caller.role.at_least(role):
        raise ApiError(
            403,
            INSUFFICIENT_ROLE,
            f"this needs a token with the {role.value} role or higher; this one is "
            f"{caller.role.value} (receipts admin create-token ORG --role {role.value})",
        )
    return caller


def fleet_reader(caller: Annotated[Caller, Depends(fleet_caller)]) -> Caller:
    return require(caller, READ)


def fleet_manager(caller: Annotated[Caller, Depends(fleet_caller)]) -> Caller:
    return require(caller, MANAGE)


FleetReader = Annotated[Caller, Depends(fleet_reader)]
FleetManager = Annotated[Caller, Depends(fleet_manager)]
