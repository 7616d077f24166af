"""`/health` (the process answers) and `/ready` (database reachable and migrated to head)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from server.api.errors import error_response
from server.db.migrate import current_revision, head_revision

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=None)
def ready(request: Request) -> JSONResponse | dict[str, str]:
    try:
        current = current_revision(request.app.state.engine)
    except SQLAlchemyError as exc:
        logger.warning("not ready: database unreachable: %s", exc)
        return error_response(503, "database_unreachable", "the database does not answer")
    head = head_revision()
    if current != head:
        return error_response(
            503,
            "database_not_migrated",
            f"database is at revision {current}, code expects {head}; run 'receipts server' "
            "(it migrates) or alembic upgrade head",
        )
    return {"status": "ready", "revision": head or ""}
