"""The read pipeline: one photo or scan in, one structured `Receipt` out.

find the receipt -> rectify it -> quality gate -> OCR lines -> extract fields

Pure: no network, no database, no clock but the stage timings. The same pipeline runs on the
scanner and on the server. Build it once with `build_pipeline(config)` (which loads the OCR
engine and fails early if it can't run) and call `read` for each image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.document import (
    ContourFinder,
    Detection,
    QualityThresholds,
    ReceiptFinder,
    assess_quality,
    rectify,
)
from models.document.geometry import frame_quad
from models.document.rectify import MAX_SIDE
from models.extraction import extract_fields
from models.memory import return_large_buffers
from models.ocr import (
    EngineUnavailable,
    LiteRTConfig,
    OcrEngine,
    OcrEngineConfig,
    build_engine,
)
from models.receipt import Receipt

logger = logging.getLogger(__name__)


class PipelineConfig(BaseModel):
    """How to read receipts. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ocr: OcrEngineConfig = Field(
        default_factory=LiteRTConfig,
        title="OCR engine",
        description="The engine's config; its `type` picks the engine: litert (the project's "
        "int8 models, the default: on SROIE val end to end it reads more fields right than "
        "Tesseract in a sixth of the time, models/artifacts/MODEL_CARD.md) or tesseract "
        "(the baseline).",
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=64,
        title="Threads",
        description="CPU threads the OCR engine may use. Tesseract gains little from more "
        "than one per image (see models/ocr/tesseract.py).",
    )
    find_receipt: bool = Field(
        default=True,
        title="Find the receipt",
        description="Look for the receipt's outline and rectify it; off for images that are "
        "already cropped flat scans.",
    )
    finder: Literal["auto", "contour", "litert"] = Field(
        default="auto",
        title="Receipt finder",
        description="litert: the trained corner model; contour: the classical outline search; "
        "auto: the model when the model folder has one and LiteRT can run, else contour.",
    )
    finder_model_dir: Path | None = Field(
        default=None,
        title="Finder's model folder",
        description="Folder with manifest.json and finder.tflite; unset: models/artifacts.",
    )
    max_side: int = Field(
        default=MAX_SIDE,
        ge=256,
        le=10000,
        title="Largest rectified side",
        description="The rectified receipt is scaled down to at most this many pixels.",
    )
    quality: QualityThresholds = Field(
        default_factory=QualityThresholds, title="Quality gate thresholds"
    )
    return_large_buffers: bool = Field(
        default=True,
        title="Give large buffers back",
        description="Serve allocations above 128 KiB by mmap for the whole process, so a "
        "long-running reader's memory does not creep up (models.memory; glibc only).",
    )


@dataclass(frozen=True)
class ReadResult:
    """What reading one image gives: the receipt, and the rectified image its boxes refer to."""

    receipt: Receipt
    rectified: np.ndarray


class Pipeline:
    """Reads receipt images; see the module docstring. Keeps no state between reads."""

    def __init__(
        self, config: PipelineConfig, engine: OcrEngine, finder: ReceiptFinder | None
    ) -> None:
        self.config = config
        self.engine = engine
        self.finder = finder

    def read(self, image: np.ndarray) -> ReadResult:
        """Read one BGR uint8 image (as `models.imageio.load_image` gives it)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
            raise ValueError(f"expected a BGR uint8 image, got {image.dtype} {image.shape}")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        height, width = image.shape[:2]
        detection: Detection | None = None
        with _timed(timings, "find"):
            if self.finder is not None:
                detection = self.finder.find(image)
        with _timed(timings, "rectify"):
            # No outline: the whole frame is read (rectify then only scales it down if needed).
            quad = detection.quad if detection is not None else frame_quad(width, height)
            rectified = rectify(image, quad, max_side=self.config.max_side)
        with _timed(timings, "quality"):
            quality = assess_quality(
                rectified,
                self.config.quality,
                detection=detection,
                frame_size=(width, height) if self.finder is not None else None,
            )
        with _timed(timings, "ocr"):
            lines = self.engine.read_lines(rectified)
        image_size = (rectified.shape[1], rectified.shape[0])
        with _timed(timings, "extract"):
            extraction = extract_fields(lines, image_size)
        timings["total"] = round((time.perf_counter() - start) * 1000, 2)
        receipt = Receipt(
            fields=extraction.fields,
            lines=lines,
            quality=quality,
            needs_review=extraction.needs_review or not quality.accepted,
            review_reasons=[*quality.reasons, *extraction.review_reasons],
            ocr_engine=self.engine.name,
            model_versions=self._versions(),
            timings_ms=timings,
            image_size=image_size,
        )
        logger.debug(
            "read %dx%d image: %d lines, review=%s, %.0f ms",
            width,
            height,
            len(lines),
            receipt.needs_review,
            timings["total"],
        )
        return ReadResult(receipt=receipt, rectified=rectified)

    def _versions(self) -> dict[str, str]:
        versions = {f"ocr.{self.engine.name}": self.engine.version}
        if self.finder is not None:
            versions[f"finder.{self.finder.name}"] = self.finder.version
        return versions


def build_pipeline(config: PipelineConfig | None = None) -> Pipeline:
    """A ready pipeline. Raises `models.ocr.EngineUnavailable` if the OCR engine can't run."""
    config = config or PipelineConfig()
    if config.return_large_buffers:
        return_large_buffers()
    engine = build_engine(config.ocr, threads=config.threads)
    finder = _build_finder(config) if config.find_receipt else None
    logger.info(
        "read pipeline: ocr %s %s, %d threads, finder %s",
        engine.name,
        engine.version,
        config.threads,
        finder.name if finder else "off",
    )
    return Pipeline(config, engine, finder)


def _build_finder(config: PipelineConfig) -> ReceiptFinder:
    """The configured finder; `auto` falls back to the contour finder, saying why, at debug level.

    An explicit `litert` whose model is missing or can't run raises `EngineUnavailable`.
    """
    if config.finder == "contour":
        return ContourFinder()
    from models.litert import ManifestError, RuntimeUnavailable
    from models.litert.finder import LiteRTFinder
    from models.ocr.litert import ARTIFACTS

    folder = config.finder_model_dir or ARTIFACTS
    try:
        return LiteRTFinder(folder, num_threads=config.threads)
    except (ManifestError, RuntimeUnavailable, RuntimeError) as exc:
        if config.finder == "litert":
            raise EngineUnavailable(f"LiteRT receipt finder unavailable: {exc}") from exc
        logger.debug("no LiteRT finder in %s (%s): contour finder", folder, exc)
        return ContourFinder()


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 2)
