"""The job kinds this server runs, and the one factory that builds a worker for them."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from server.images.base import ImageStore
from server.jobs.worker import JobHandler, JobWorker
from server.observability.jobs import JobMetrics
from server.settings import Settings


def job_handlers(
    settings: Settings, sessions: sessionmaker[Session], store: ImageStore
) -> list[JobHandler]:
    """One handler per job kind: `read_upload` (server/uploads/reader.py)."""
    from server.uploads.reader import ReadUploadHandler

    return [ReadUploadHandler(sessions, store, settings.uploads)]


def build_job_worker(
    settings: Settings,
    sessions: sessionmaker[Session],
    store: ImageStore,
    metrics: JobMetrics | None = None,
) -> JobWorker:
    """A worker for every job kind, configured by `settings.jobs`."""
    return JobWorker(
        sessions, job_handlers(settings, sessions, store), settings.jobs, metrics=metrics
    )
