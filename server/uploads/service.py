"""Accepting uploaded photos: validate every one, store them, enqueue their reads; and status.

A photo is accepted only whole: its size is within `max_bytes`, Pillow decodes every pixel of
it (`models.imageio.load_image`: a truncated JPEG, a text file or a decompression bomb is
refused with a sentence saying why) and it is within `max_pixels`. A request with several
photos is refused as a whole if any of them is, before anything is stored; then the photos go
to the image store and the `uploads` and `jobs` rows are written in the caller's transaction.
(If that transaction fails, the stored blobs have no row pointing at them: the store is
content-addressed, so they are harmless and a retry reuses them.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from PIL import UnidentifiedImageError
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from models.imageio import ImageError, encode_image, load_image
from server.api.errors import ApiError
from server.db.models import Receipt
from server.images.base import ImageStore
from server.ingest.interpret import sniff_image_type
from server.jobs.models import Job
from server.jobs.queue import enqueue
from server.jobs.settings import JobsSettings
from server.uploads.models import Upload
from server.uploads.settings import UploadSettings

#: The job kind that reads an uploaded photo (server/uploads/reader.py).
READ_UPLOAD = "read_upload"


@dataclass(frozen=True)
class Photo:
    """A validated photo: bytes to store (re-encoded as JPEG if not JPEG/PNG/WebP)."""

    filename: str
    data: bytes
    content_type: str
    width: int
    height: int


def read_limited(stream: BinaryIO, filename: str, max_bytes: int) -> bytes:
    """At most `max_bytes` of an uploaded file, or a 413 saying the limit."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"{filename} is larger than the {_size(max_bytes)} accepted; "
            "take the photo at a lower resolution",
        )
    return data


def validate_photo(filename: str, data: bytes, settings: UploadSettings) -> Photo:
    """`data` as a `Photo`, or an `ApiError` (413 too large, 415 not an image, 422 damaged)."""
    name = _display_name(filename)
    if len(data) > settings.max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"{name} is larger than the {_size(settings.max_bytes)} "
            "accepted; take the photo at a lower resolution",
        )
    try:
        image = load_image(data, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes)
    except ImageError as exc:
        reason = str(exc).replace("the image data", name, 1)
        if isinstance(exc.__cause__, UnidentifiedImageError):
            raise ApiError(
                415, "not_an_image", f"{reason}; upload a JPEG, PNG or WebP photo"
            ) from exc
        raise ApiError(422, "invalid_image", reason) from exc
    content_type = sniff_image_type(data)
    if content_type is None:  # decodable but unusual (TIFF, BMP, GIF...): keep a JPEG of it
        data, content_type = encode_image(image, "jpeg", 92), "image/jpeg"
    height, width = image.shape[:2]
    return Photo(name, data, content_type, width, height)


def accept_uploads(
    session: Session,
    store: ImageStore,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID | None,
    photos: Sequence[Photo],
    jobs: JobsSettings,
) -> list[Upload]:
    """Store validated photos and enqueue their reads, in the caller's transaction."""
    uploads = []
    for photo in photos:
        sha256 = store.put(photo.data)
        upload = Upload(
            id=uuid.uuid4(),
            organization_id=organization_id,
            uploaded_by=user_id,
            filename=photo.filename,
            sha256=sha256,
            content_type=photo.content_type,
            size_bytes=len(photo.data),
        )
        session.add(upload)
        session.flush()
        job = enqueue(
            session,
            READ_UPLOAD,
            {"upload_id": str(upload.id)},
            organization_id=organization_id,
            max_attempts=jobs.max_attempts,
        )
        upload.job_id = job.id
        uploads.append(upload)
    session.flush()
    return uploads


@dataclass(frozen=True)
class ReadReceipt:
    id: uuid.UUID
    merchant: str | None
    date: dt.date | None
    total: Decimal | None
    currency: str | None
    needs_review: bool
    duplicate_of: uuid.UUID | None


@dataclass(frozen=True)
class UploadState:
    """How far an upload got: queued, running, done or failed (with the reason)."""

    upload: Upload
    state: str
    attempts: int
    error: str | None
    receipt: ReadReceipt | None


def upload_states(
    session: Session, organization_id: uuid.UUID, upload_ids: Sequence[uuid.UUID]
) -> list[UploadState]:
    """The uploads of ONE organisation among `upload_ids` (others are not found), in order."""
    if not upload_ids:
        return []
    rows = session.execute(
        select(Upload, Job.state, Job.attempts, Job.error, Receipt)
        .outerjoin(Job, Job.id == Upload.job_id)
        .outerjoin(
            Receipt,
            and_(Receipt.id == Upload.id, Receipt.organization_id == Upload.organization_id),
        )
        .where(Upload.organization_id == organization_id, Upload.id.in_(list(upload_ids)))
    ).all()
    found = {row[0].id: _state(*row) for row in rows}
    return [found[i] for i in upload_ids if i in found]


def recent_uploads(
    session: Session, organization_id: uuid.UUID, user_id: uuid.UUID | None, limit: int = 10
) -> list[UploadState]:
    """The latest uploads of a user of the organisation (any user's when `user_id` is None)."""
    q = select(Upload.id).where(Upload.organization_id == organization_id)
    if user_id is not None:
        q = q.where(Upload.uploaded_by == user_id)
    ids = list(session.scalars(q.order_by(Upload.created_at.desc(), Upload.id).limit(limit)))
    return upload_states(session, organization_id, ids)


def _state(
    upload: Upload, state: str | None, attempts: int | None, error: str | None, r: Receipt | None
) -> UploadState:
    receipt = None
    if r is not None:
        total = _plain(r.total) if r.total is not None else None
        receipt = ReadReceipt(
            r.id, r.merchant, r.receipt_date, total, r.currency, r.needs_review, r.duplicate_of
        )
        state = "done"
    return UploadState(upload, state or "failed", attempts or 0, error, receipt)


def _plain(amount: Decimal) -> Decimal:
    """The amount as printed: 700.2400 (PostgreSQL's NUMERIC scale) -> 700.24."""
    cents = amount.quantize(Decimal("0.01"))
    return cents if cents == amount else amount.normalize()


def _display_name(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(c for c in base if c.isprintable())[:200]
    return cleaned or "the photo"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{n // 1024} KiB"
