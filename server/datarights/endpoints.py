"""HTTP routes of data rights (`/api/v1/organization`): export everything, delete everything.

Both need a token with the owner role (``receipts admin create-token ORG --role owner``).
Deleting also needs the organisation's exact name typed in the body, so that no script deletes
an organisation by accident.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from server.accounts.roles import Role
from server.api.auth import Principal
from server.api.deps import CurrentPrincipal, DbSession, Images
from server.api.errors import ApiError
from server.datarights.deletion import delete_organization
from server.datarights.export import stream_organization
from server.db.models import Organization
from server.webhooks.endpoints import require_role

router = APIRouter(prefix="/api/v1/organization", tags=["data rights"])


def _owner(principal: CurrentPrincipal) -> Principal:
    return require_role(principal, Role.OWNER)


Owner = Annotated[Principal, Depends(_owner)]


def export_filename(now: dt.datetime | None = None) -> str:
    return f"organization-export-{(now or dt.datetime.now(dt.UTC)):%Y%m%d}.zip"


@router.get("/export.zip", response_class=StreamingResponse)
def export_everything(request: Request, caller: Owner, store: Images) -> StreamingResponse:
    """Every row of the organisation in every table (JSON Lines), its line items (CSV), its
    images and a manifest, as one streamed ZIP. Credentials are left out."""
    body = stream_organization(request.app.state.sessions, store, caller.organization_id)
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export_filename()}"',
            "Cache-Control": "private, no-store",
        },
    )


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(
        max_length=200, description="The organisation's exact name: the deletion cannot be undone."
    )


class DeleteReport(BaseModel):
    organization_id: str
    deleted_rows: dict[str, int] = Field(description="Rows deleted per table.")
    devices: list[str] = Field(description="Scanners removed (and cut off at the broker).")
    images_deleted: int
    images_kept_shared: int = Field(description="Images another organisation also has.")


@router.post("/delete", response_model=DeleteReport)
def delete_everything(
    request: Request, caller: Owner, session: DbSession, store: Images, body: DeleteRequest
) -> DeleteReport:
    """Delete the organisation: every row, its images, its scanners' broker access. Final."""
    org = session.get(Organization, caller.organization_id)
    if org is None:  # pragma: no cover - the token's organisation exists while it is valid
        raise ApiError(404, "organization_not_found", "the organisation is already deleted")
    if body.confirm != org.name:
        raise ApiError(
            400,
            "confirmation_mismatch",
            "to delete the organisation, send its exact name as `confirm`; nothing was deleted",
        )
    session.commit()  # the deletion runs in transactions of its own: hold no row of this one
    report = delete_organization(
        request.app.state.sessions,
        store,
        caller.organization_id,
        requested_by=caller.actor.label,
        fleet=request.app.state.fleet,
    )
    return DeleteReport(
        organization_id=str(report.organization_id),
        deleted_rows=report.counts,
        devices=report.devices,
        images_deleted=report.images_deleted,
        images_kept_shared=report.images_shared,
    )
