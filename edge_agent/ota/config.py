"""The `ota:` section of the agent's config: where slots live, which keys to trust, limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_agent.configbase import ConfigPath, ExistingFile, StrictModel


class OtaConfig(StrictModel):
    """Over-the-air updates of models and agent; absent: the device refuses ``ota`` commands."""

    dir: ConfigPath = Field(
        default=Path("ota"),
        validate_default=True,
        description="Folder of the A/B slots (models/ and agent/, each with slots/a, slots/b, "
        "current) on the writable data partition.",
    )
    public_keys: list[ExistingFile] = Field(
        min_length=1,
        description="Ed25519 public keys (PEM) whose signatures on a release manifest are trusted.",
    )
    ca_file: ExistingFile | None = Field(
        default=None, description="CA bundle for the artifact server's HTTPS; default: system CAs."
    )
    allow_http: bool = Field(
        default=False,
        description="DEVELOPMENT ONLY: accept plain http:// artifact URLs (the signature still "
        "protects the content; privacy and availability do not hold). Never on a real scanner.",
    )
    max_artifact_bytes: int = Field(
        default=1 << 30, ge=1 << 10, description="Largest artifact the device will download."
    )
    probation_scans: int = Field(
        default=5,
        ge=0,
        le=10000,
        description="Real scans a new release must read before it is final (0: final after "
        "the self-test).",
    )
    probation_failures: int = Field(
        default=1,
        ge=1,
        description="Failed reads during probation that roll the release back.",
    )
    connect_timeout_s: float = Field(default=15.0, gt=0, description="HTTPS connect timeout.")
    read_timeout_s: float = Field(default=60.0, gt=0, description="HTTPS read timeout.")
    selftest_timeout_s: float = Field(
        default=600.0, gt=0, description="Longest self-test of an agent release (a subprocess)."
    )
    agent_max_boots: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Starts of a new agent release without reaching probation before the "
        "launcher (firmware/launch.py) switches back.",
    )
