"""The `jobs` table: one row per unit of background work, its state and its lease."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import RecordModel, utcnow
from server.db.types import JsonDoc

#: Every state of a job (server/jobs/queue.py says how it moves between them).
JOB_STATES = ("queued", "running", "done", "failed")


class Job(RecordModel):
    """A job: `kind` picks its handler, `payload` is its JSON input."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
        Index("ix_jobs_claim", "state", "run_after"),
    )

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"),
        index=True,
        comment="The organisation the work is for, if any.",
    )
    kind: Mapped[str] = mapped_column(String(40), comment="Which handler runs it.")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0, comment="Times a worker has claimed it.")
    max_attempts: Mapped[int] = mapped_column(default=3)
    run_after: Mapped[dt.datetime] = mapped_column(
        default=utcnow, comment="Not claimed before this time (retry backoff)."
    )
    locked_by: Mapped[str | None] = mapped_column(
        String(200), default=None, comment="The worker running it."
    )
    locked_until: Mapped[dt.datetime | None] = mapped_column(
        default=None, comment="Lease end: after it, another worker may take the job over."
    )
    error: Mapped[str | None] = mapped_column(Text, default=None, comment="The last failure.")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
