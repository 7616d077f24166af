"""Settings of the fleet service (``RM_FLEET__*``): CA, broker auth files, command defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FleetSettings(BaseModel):
    """Where the deployment's CA and the broker's auth files live, and fleet defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_dir: Path | None = Field(
        default=None,
        description="Folder of the deployment's CA (ca.pem, ca.key; `receipts provision init-ca`). "
        "Unset: claims issue no client certificate and no CRL is written.",
    )
    broker_auth_dir: Path | None = Field(
        default=None,
        description="Folder where the Mosquitto password file, ACL and CRL are generated from "
        "the registry. Unset: the registry is not mirrored to a broker (e.g. the embedded one).",
    )
    broker_pid_file: Path | None = Field(
        default=None, description="Mosquitto's pid file: it gets SIGHUP after each change."
    )
    broker_reload_command: list[str] | None = Field(
        default=None,
        description='Command that reloads the broker instead, e.g. ["docker", "kill", "-s", '
        '"HUP", "mosquitto"] (JSON list in the environment).',
    )
    broker_auth_file_mode: int = Field(
        default=0o640, description="Mode of the generated files (the broker must read them)."
    )
    command_ttl_s: int = Field(
        default=3600, ge=1, description="Expiry of a command sent without expires_at."
    )
    publish_timeout_s: float = Field(
        default=5.0, gt=0, description="How long the API waits for the broker's PUBACK."
    )

    releases_dir: Path | None = Field(
        default=None,
        description="Folder of uploaded release artifacts (named by sha256). Unset: no uploads.",
    )
    release_public_keys: list[Path] = Field(
        default_factory=list,
        description="Ed25519 public keys (PEM) an uploaded release must be signed with; empty: "
        "the signature is left to the scanners.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="This server's base URL as scanners reach it (artifact download links).",
    )
    ota_command_ttl_s: int = Field(
        default=86400,
        ge=60,
        description="Expiry of an install (ota) command and of its artifact link: download, "
        "self-test and probation scans must finish within it, else the install counts failed.",
    )

    @model_validator(mode="after")
    def _one_reloader(self) -> FleetSettings:
        if self.broker_pid_file is not None and self.broker_reload_command is not None:
            raise ValueError(
                "set RM_FLEET__BROKER_PID_FILE or RM_FLEET__BROKER_RELOAD_COMMAND, not both"
            )
        return self
