"""The `read_upload` job: read an uploaded photo with the scanner's pipeline, admit the receipt.

The photo is read exactly as a scanner reads one (`models.pipeline`: find and rectify the
receipt, quality gate, OCR with the engine of `RM_UPLOADS__PIPELINE__OCR__TYPE`, extraction).
The rectified image, which the OCR boxes refer to, becomes the receipt's image (a JPEG, as a
scanner sends); the photo as uploaded stays in the store under the upload's digest. The receipt
gets the upload's id, so a retried job writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.imageio import ImageError, encode_image, load_image
from models.ocr import EngineUnavailable
from models.pipeline import Pipeline, build_pipeline
from models.protocol import ImageRef, ReceiptMessage
from models.receipt import Receipt
from server.db.base import utcnow
from server.images.base import ImageNotFoundError, ImageStore
from server.ingest.repository import IngestRepository
from server.jobs.queue import ClaimedJob
from server.jobs.worker import PermanentJobError, Write
from server.receipts.duplicates import image_dhash
from server.receipts.intake import admit_receipts
from server.uploads.models import Upload
from server.uploads.service import READ_UPLOAD
from server.uploads.settings import UploadSettings

logger = logging.getLogger(__name__)

#: JPEG quality of the rectified receipt image kept for the dashboard.
RECTIFIED_QUALITY = 90


class ReadUploadHandler:
    """Job handler of `read_upload` (see `server.jobs.worker.JobHandler`)."""

    kind = READ_UPLOAD

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: ImageStore,
        settings: UploadSettings,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.settings = settings
        self._pipeline = pipeline
        self._lock = threading.Lock()

    def pipeline(self) -> Pipeline:
        """The read pipeline, built on first use (a missing OCR engine fails the attempt)."""
        with self._lock:
            if self._pipeline is None:
                try:
                    self._pipeline = build_pipeline(self.settings.pipeline)
                except EngineUnavailable as exc:
                    raise RuntimeError(f"the OCR engine cannot run here: {exc}") from exc
            return self._pipeline

    def perform(self, job: ClaimedJob) -> Write:
        upload = self._upload(job)
        try:
            photo = self.store.get(upload.sha256)
        except ImageNotFoundError as exc:
            raise PermanentJobError(
                f"the photo {upload.filename} ({upload.sha256}) is missing from the image store"
            ) from exc
        try:
            image = load_image(
                photo, max_pixels=self.settings.max_pixels, max_bytes=self.settings.max_bytes
            )
        except ImageError as exc:
            raise PermanentJobError(f"{upload.filename}: {exc}") from exc
        result = self.pipeline().read(image)
        rectified = encode_image(result.rectified, "jpeg", RECTIFIED_QUALITY)
        sha256 = self.store.put(rectified)
        height, width = result.rectified.shape[:2]
        received_at = utcnow()
        document = ReceiptMessage(
            receipt_id=upload.id,
            captured_at=upload.created_at,
            source=f"upload:{upload.filename}"[:200],
            image=ImageRef(
                sha256=sha256,
                content_type="image/jpeg",
                size_bytes=len(rectified),
                width=width,
                height=height,
            ),
            receipt=result.receipt,
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        receipt_row = _receipt_row(upload, result.receipt, document, sha256, received_at)
        image_row = {
            "receipt_id": upload.id,
            "organization_id": upload.organization_id,
            "device_id": None,
            "sha256": sha256,
            "content_type": "image/jpeg",
            "size_bytes": len(rectified),
            "received_at": received_at,
            "dhash": image_dhash(rectified),
        }
        fields = result.receipt.fields
        logger.info(
            "upload %s read: merchant %r, date %s, total %s, review=%s, %.0f ms",
            upload.id,
            fields.merchant.value if fields.merchant else None,
            fields.date.value if fields.date else None,
            fields.total.value if fields.total else None,
            result.receipt.needs_review,
            result.receipt.timings_ms.get("total", 0.0),
        )

        def write(session: Session) -> None:
            # image first: admitting the receipt then runs the duplicate check with its hash
            IngestRepository(session).insert_images([image_row])
            admit_receipts(session, [receipt_row])

        return write

    def _upload(self, job: ClaimedJob) -> Upload:
        try:
            upload_id = uuid.UUID(str(job.payload.get("upload_id")))
        except ValueError as exc:
            raise PermanentJobError(f"job payload has no upload id: {job.payload!r}") from exc
        with self.sessions() as session:
            upload = session.get(Upload, upload_id)
            if upload is None:
                raise PermanentJobError(f"upload {upload_id} no longer exists")
            session.expunge(upload)
            return upload


def _receipt_row(
    upload: Upload,
    receipt: Receipt,
    document: dict[str, Any],
    image_sha256: str,
    received_at: dt.datetime,
) -> dict[str, Any]:
    f = receipt.fields
    receipt_date = f.date.value if f.date else None
    return {
        "id": upload.id,
        "organization_id": upload.organization_id,
        "device_id": None,
        "source": "upload",
        "uploaded_by": upload.uploaded_by,
        "captured_at": upload.created_at,
        "received_at": received_at,
        "merchant": f.merchant.value[:500] if f.merchant else None,
        "receipt_date": receipt_date,
        "effective_date": receipt_date or upload.created_at.astimezone(dt.UTC).date(),
        "total": f.total.value if f.total else None,
        "currency": f.currency.value[:8] if f.currency else None,
        "needs_review": receipt.needs_review,
        "image_sha256": image_sha256,
        "document": document,
    }
