"""Server configuration: pydantic-settings read once at start from `RM_*` environment variables.

Nested groups use ``__``: ``RM_DATABASE_URL``, ``RM_MQTT__HOST``, ``RM_MQTT__PORT``,
``RM_INGEST__BATCH_SIZE``, ``RM_IMAGE_STORE__ROOT``... Unknown keys are errors. Outside
``RM_ENVIRONMENT=development`` placeholder secrets are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.accounts.config import AccountsSettings
from server.api.ratelimit import RateLimitSettings
from server.fleet.settings import FleetSettings
from server.images.store import ImageStoreConfig, LocalImageStoreConfig
from server.jobs.settings import JobsSettings
from server.uploads.settings import UploadSettings
from server.webhooks.settings import WebhookSettings

#: Secrets that are examples, never real ones.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "changethis", "secret", "password"})


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Group):
    """How the server reaches the broker."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(default=None, description="Broker user name, if it wants one.")
    password: SecretStr | None = Field(default=None, description="Broker password.")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description='MQTT version: "5" (Mosquitto, EMQX) or "3.1.1" (e.g. the embedded amqtt).',
    )
    tls_ca: Path | None = Field(default=None, description="CA bundle; setting it turns TLS on.")
    tls_cert: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    tls_key: Path | None = Field(default=None, description="Client private key (mutual TLS).")
    keepalive_s: int = Field(default=30, ge=5, description="MQTT keepalive in seconds.")

    @model_validator(mode="after")
    def _cert_with_key(self) -> MqttSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both RM_MQTT__TLS_CERT and RM_MQTT__TLS_KEY, or neither")
        return self


class IngestSettings(_Group):
    """The ingest worker: session, subscription and batching."""

    client_id: str = Field(
        default="rm-ingest-1",
        description="MQTT client id; fixed, so the broker keeps the session across restarts. "
        "Give each worker its own.",
    )
    shared_group: str | None = Field(
        default="ingest",
        description="Shared-subscription group ($share/<group>/...); empty for a plain "
        "subscription (brokers without $share).",
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="How long the broker keeps the session (MQTT 5)."
    )
    batch_size: int = Field(default=500, ge=1, description="Messages written per transaction.")
    batch_max_wait_ms: int = Field(
        default=100, ge=0, description="Longest a message waits for its batch to fill."
    )
    retry_max_backoff_s: float = Field(
        default=30.0, gt=0, description="Longest pause between retries of a failed batch."
    )
    dead_letter_payload_limit: int = Field(
        default=16 << 10, ge=0, description="Bytes of a refused payload kept in dead_letters."
    )
    telemetry_history: int = Field(
        default=2880, ge=1, description="Heartbeats kept per device (2880: a day at 30 s)."
    )
    quota_release_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often the worker releases receipts held over a monthly quota that "
        "now fit (a new month, an upgrade made elsewhere); 0: never (server/plans/quota.py).",
    )

    @field_validator("shared_group", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v


class ApiSettings(_Group):
    """The API process: its database pool and its credential cache (server.api.credentials)."""

    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="PostgreSQL connections each API process keeps open (plus up to 10 opened "
        "for one use under a burst); about the requests it serves at once. Keep "
        "processes x (size + 10) under the server's max_connections.",
    )
    credential_cache_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="Seconds a resolved API credential is reused without asking the database; "
        "a revocation or plan change made through another process takes effect within it. "
        "0: off.",
    )


class ObservabilitySettings(_Group):
    """Logs and metrics (server.observability)."""

    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="Log lines as JSON or text; auto: text on a terminal."
    )
    log_file: Path | None = Field(default=None, description="Also log (JSON) to this file.")
    log_max_bytes: int = Field(
        default=10 << 20, ge=1024, description="Rotate the file at this size."
    )
    log_backup_count: int = Field(default=5, ge=0, description="Rotated files kept.")
    ingest_metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (containers: Prometheus scrapes from outside)
        description="Address of an ingest worker's /metrics.",
    )
    ingest_metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="Port of an ingest worker's /metrics; 0: none."
    )


class Settings(BaseSettings):
    """Everything the server processes need, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="RM_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    environment: Literal["development", "production"] = Field(
        default="development", description="`production` refuses placeholder secrets."
    )
    database_url: str = Field(
        default="sqlite:///./var/receipts.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg2://user@host/db.",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    image_store: Annotated[ImageStoreConfig, Field(discriminator="type")] = Field(
        default_factory=LocalImageStoreConfig
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs invitation and password-reset links; required outside development.",
    )
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)

    @field_validator("image_store", mode="before")
    @classmethod
    def _local_by_default(cls, v: object) -> object:
        if isinstance(v, dict) and "type" not in v:
            return {"type": "local", **v}
        return v

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.environment == "development":
            return self
        key = self.secret_key.get_secret_value() if self.secret_key else None
        if key is not None and (key.lower() in PLACEHOLDER_SECRETS or len(key) < 32):
            raise ValueError(
                "RM_SECRET_KEY is a placeholder or shorter than 32 characters; set a long random "
                "one (placeholders are allowed only with RM_ENVIRONMENT=development)"
            )
        password = self.mqtt.password.get_secret_value() if self.mqtt.password else None
        if password is not None and password.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "RM_MQTT__PASSWORD is a placeholder; set the broker's real password "
                "(placeholders are allowed only with RM_ENVIRONMENT=development)"
            )
        if "changethis" in self.database_url or ":changeme@" in self.database_url:
            raise ValueError(
                "RM_DATABASE_URL carries a placeholder password; set the real one "
                "(placeholders are allowed only with RM_ENVIRONMENT=development)"
            )
        return self
