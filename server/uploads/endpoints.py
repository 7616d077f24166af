"""HTTP routes of uploads: `POST /api/v1/uploads` (multipart, field `file`, repeatable) and
`GET /api/v1/uploads/{id}`; tenancy comes from the bearer token's organisation."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile as StarletteUploadFile

from server.api.deps import DbSession, Images, Organization
from server.api.errors import ApiError
from server.settings import Settings
from server.uploads import service
from server.uploads.service import UploadState

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])


class UploadedReceipt(BaseModel):
    id: uuid.UUID
    merchant: str | None
    date: dt.date | None
    total: Decimal | None
    currency: str | None
    needs_review: bool
    duplicate_of: uuid.UUID | None = Field(description="The earlier receipt this one repeats.")
    url: str = Field(description="The receipt in the API.")


class UploadStatus(BaseModel):
    id: uuid.UUID = Field(description="The upload; also the id of the receipt read from it.")
    filename: str
    state: str = Field(description="queued, running, done or failed.")
    attempts: int
    error: str | None = Field(description="Why the last attempt failed, if it did.")
    created_at: dt.datetime
    status_url: str
    receipt: UploadedReceipt | None = Field(description="Once read (state done).")

    @classmethod
    def of(cls, s: UploadState, api_prefix: str = "/api/v1") -> UploadStatus:
        r = s.receipt
        return cls(
            id=s.upload.id,
            filename=s.upload.filename,
            state=s.state,
            attempts=s.attempts,
            error=s.error,
            created_at=s.upload.created_at,
            status_url=f"{api_prefix}/uploads/{s.upload.id}",
            receipt=None
            if r is None
            else UploadedReceipt(
                id=r.id,
                merchant=r.merchant,
                date=r.date,
                total=r.total,
                currency=r.currency,
                needs_review=r.needs_review,
                duplicate_of=r.duplicate_of,
                url=f"{api_prefix}/receipts/{r.id}",
            ),
        )


class UploadList(BaseModel):
    uploads: list[UploadStatus]


def read_files(files: Sequence[StarletteUploadFile], settings: Settings) -> list[service.Photo]:
    """Validate every uploaded file (all or none), reading each within the size limit."""
    limits = settings.uploads
    if not files:
        raise ApiError(400, "no_files", "send one or more photos as multipart field 'file'")
    if len(files) > limits.max_files:
        raise ApiError(
            400,
            "too_many_files",
            f"{len(files)} files sent; at most {limits.max_files} per request",
        )
    photos = []
    for f in files:
        name = f.filename or "the photo"
        data = service.read_limited(f.file, name, limits.max_bytes)
        photos.append(service.validate_photo(name, data, limits))
    return photos


@router.post("", status_code=202, response_model=UploadList)
def upload_photos(
    request: Request,
    session: DbSession,
    organization: Organization,
    store: Images,
    file: Annotated[list[UploadFile], File(description="Receipt photos (JPEG, PNG, WebP...).")],
) -> UploadList:
    """Accept receipt photos; each is read in the background. Poll `status_url` for the result."""
    settings: Settings = request.app.state.settings
    photos = read_files(file, settings)
    uploads = service.accept_uploads(
        session,
        store,
        organization_id=organization,
        user_id=None,
        photos=photos,
        jobs=settings.jobs,
    )
    states = service.upload_states(session, organization, [u.id for u in uploads])
    return UploadList(uploads=[UploadStatus.of(s) for s in states])


@router.get("/{upload_id}", response_model=UploadStatus)
def upload_status(
    session: DbSession, organization: Organization, upload_id: uuid.UUID
) -> UploadStatus:
    """How far the upload got; `receipt` once it is read."""
    found = service.upload_states(session, organization, [upload_id])
    if not found:
        raise ApiError(404, "upload_not_found", f"no upload {upload_id} in your organisation")
    return UploadStatus.of(found[0])
