"""Settings of photo uploads (`RM_UPLOADS__*`): limits, and how the server reads the photos."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.pipeline import PipelineConfig


class UploadSettings(BaseModel):
    """Upload limits and the read pipeline the job workers use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(
        default=20 << 20,
        ge=1024,
        le=64 << 20,
        description="Largest photo accepted, in bytes (a phone photo is 2-8 MB).",
    )
    max_files: int = Field(
        default=20, ge=1, le=200, description="Most photos in one upload request."
    )
    max_pixels: int = Field(
        default=60_000_000,
        ge=1_000_000,
        le=100_000_000,
        description="Largest photo accepted, in pixels (width x height).",
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig,
        description="How photos are read: the scanner's pipeline config; `pipeline.ocr.type` "
        "picks the OCR engine (litert, the default, or tesseract).",
    )
