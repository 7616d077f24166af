"""Upload page: take or choose receipt photos on a phone and watch them being read.

`GET /app/upload` shows the form (a camera input, `capture="environment"`, and a multi-file
picker) and the user's latest uploads. The page's script (`static/upload.js`) posts each photo
on its own to `POST /app/upload` (JSON answer) and polls `GET /app/uploads/status` until the
receipt is read, then shows its merchant, date and total with a link, without a reload.
Without script the form posts all photos at once and the page lists them after a redirect.
Validation, storage and the job are `server.uploads.service`'s, shared with the API.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from server.accounts.roles import EDIT_RECEIPTS
from server.api.deps import Images
from server.api.errors import ApiError
from server.dashboard.deps import PREFIX, CheckedForm, Db, PageError, Viewer, require
from server.dashboard.pages import redirect, render
from server.images.base import ImageStore
from server.settings import Settings
from server.uploads import service
from server.uploads.endpoints import read_files
from server.uploads.service import UploadState

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: Most uploads one status request asks about.
MAX_STATUS_IDS = 50


def status_view(s: UploadState) -> dict[str, Any]:
    """What the page shows of an upload (JSON for the script, dict for the template)."""
    r = s.receipt
    receipt = None
    if r is not None:
        receipt = {
            "id": str(r.id),
            "merchant": r.merchant,
            "date": r.date.isoformat() if r.date else None,
            "total": str(r.total) if r.total is not None else None,
            "currency": r.currency,
            "needs_review": r.needs_review,
            "url": f"{PREFIX}/receipts/{r.id}",
            "duplicate_url": f"{PREFIX}/receipts/{r.duplicate_of}" if r.duplicate_of else None,
        }
    return {
        "id": str(s.upload.id),
        "filename": s.upload.filename,
        "state": s.state,
        "attempts": s.attempts,
        "error": s.error if s.state == "failed" else None,
        "receipt": receipt,
    }


@router.get("/upload")
def upload_page(request: Request, who: Viewer, db: Db) -> Response:
    recent = service.recent_uploads(db, who.user.organization_id, who.user.id)
    return render(
        request,
        "upload.html",
        who,
        uploads=[status_view(s) for s in recent],
        can_upload=who.role.at_least(EDIT_RECEIPTS),
        limit_mib=_settings(request).uploads.max_bytes >> 20,
    )


def _accept(
    db: Session, store: ImageStore, settings: Settings, who: Viewer, files: list[UploadFile]
) -> list[dict[str, Any]]:
    photos = read_files(files, settings)
    uploads = service.accept_uploads(
        db,
        store,
        organization_id=who.user.organization_id,
        user_id=who.user.id,
        photos=photos,
        jobs=settings.jobs,
    )
    states = service.upload_states(db, who.user.organization_id, [u.id for u in uploads])
    return [status_view(s) for s in states]


@router.post("/upload")
async def upload_photos(
    request: Request, who: Viewer, db: Db, store: Images, _form: CheckedForm
) -> Response:
    """Accept photos from the page: JSON for its script, a redirect for a plain form post."""
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        require(who, EDIT_RECEIPTS)
    except PageError as exc:
        if wants_json:
            return _error(exc.status, "forbidden", exc.message)
        raise
    form = await request.form()
    files = [f for f in form.getlist("file") if isinstance(f, UploadFile) and f.filename]
    try:
        uploads = await run_in_threadpool(_accept, db, store, _settings(request), who, files)
    except ApiError as exc:  # raised before anything is stored or written
        if wants_json:
            return _error(exc.status, exc.code, exc.message)
        raise PageError(exc.status, exc.message) from exc
    finally:
        await form.close()  # the spooled temporary files
    if wants_json:
        return JSONResponse({"uploads": uploads}, status_code=202)
    return redirect(PREFIX + "/upload")


@router.get("/uploads/status")
def upload_status(request: Request, who: Viewer, db: Db) -> Response:
    """States of the given uploads (`ids`, comma-separated) of the user's organisation."""
    raw = request.query_params.get("ids", "")
    try:
        ids = [uuid.UUID(p) for p in raw.split(",") if p.strip()][:MAX_STATUS_IDS]
    except ValueError:
        return _error(400, "invalid_ids", "ids must be upload ids separated by commas")
    states = service.upload_states(db, who.user.organization_id, ids)
    return JSONResponse(
        {"uploads": [status_view(s) for s in states]}, headers={"Cache-Control": "no-store"}
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
