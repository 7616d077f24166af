"""Settings of webhook delivery (``RM_WEBHOOKS__*``): timeouts, retries, address policy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WebhookSettings(BaseModel):
    """How the delivery worker sends events and when it gives up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(
        default=10.0, gt=0, description="Connect and read timeout of one attempt, in seconds."
    )
    max_attempts: int = Field(
        default=12, ge=1, le=50, description="Attempts before a delivery is marked failed."
    )
    backoff_min_s: float = Field(
        default=60.0, gt=0, description="Pause after the first failed attempt (doubles after each)."
    )
    backoff_max_s: float = Field(
        default=12 * 3600.0, gt=0, description="Longest pause between two attempts."
    )
    jitter: float = Field(
        default=0.2, ge=0, le=1, description="Each pause is varied by up to this fraction."
    )
    allow_private_addresses: bool | None = Field(
        default=None,
        description="Allow URLs that resolve to loopback, private, link-local or reserved "
        "addresses. Unset: allowed with RM_ENVIRONMENT=development only (SSRF protection).",
    )
    batch_size: int = Field(default=20, ge=1, description="Deliveries one worker claims at once.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight per worker.")
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due deliveries."
    )
    lease_s: float = Field(
        default=120.0,
        gt=0,
        description="How long a claimed delivery is reserved; a crashed worker's claims return "
        "after it. Must exceed the timeout.",
    )
    max_endpoints: int = Field(default=20, ge=1, description="Webhooks per organisation.")
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (containers: Prometheus scrapes from outside)
        description="Address of the `receipts webhooks` worker's /metrics.",
    )
    metrics_port: int = Field(
        default=9103, ge=0, le=65535, description="Port of the worker's /metrics; 0: none."
    )

    @model_validator(mode="after")
    def _consistent(self) -> WebhookSettings:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("RM_WEBHOOKS__BACKOFF_MAX_S must be at least __BACKOFF_MIN_S")
        if self.lease_s <= self.timeout_s:
            raise ValueError("RM_WEBHOOKS__LEASE_S must be longer than RM_WEBHOOKS__TIMEOUT_S")
        return self

    def private_allowed(self, environment: str) -> bool:
        """Whether URLs may point into private networks in `environment`."""
        if self.allow_private_addresses is not None:
            return self.allow_private_addresses
        return environment == "development"
