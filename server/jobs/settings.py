"""Settings of the job queue and its workers (`RM_JOBS__*`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class JobsSettings(BaseModel):
    """How job workers claim, retry and report (server/jobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_id: str | None = Field(
        default=None,
        max_length=200,
        description="Name of this worker in `jobs.locked_by`; default host name and process id.",
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Pause between looks at an empty queue."
    )
    lease_s: float = Field(
        default=120.0,
        ge=5,
        description="How long a claimed job is reserved; the worker renews it while it runs, "
        "and a crashed worker's job is taken over when it runs out.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Claims before a job is failed for good."
    )
    retry_backoff_s: float = Field(
        default=10.0,
        ge=0,
        description="Pause before the first retry; doubled for each further attempt (max 1 h).",
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (containers: Prometheus scrapes from outside)
        description="Address of a job worker's /metrics.",
    )
    metrics_port: int = Field(
        default=9102, ge=0, le=65535, description="Port of a job worker's /metrics; 0: none."
    )
