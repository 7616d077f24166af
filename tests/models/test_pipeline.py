"""The read pipeline end to end (models/pipeline.py): photo or scan in, Receipt out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from models.imageio import load_image
from models.pipeline import Pipeline, PipelineConfig, ReadResult, build_pipeline
from tests.models.synthetic import countertop, photograph, render_receipt

STAGES = {"find", "rectify", "quality", "ocr", "extract", "total"}


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return build_pipeline(PipelineConfig(threads=1))


@pytest.fixture(scope="module")
def photo_result(pipeline: Pipeline) -> tuple[np.ndarray, ReadResult]:
    receipt = render_receipt()
    photo = photograph(receipt, countertop("wood", seed=7), 7, fill=0.7)
    return receipt, pipeline.read(photo.image)


def test_a_photographed_receipt_is_found_rectified_and_read(
    photo_result: tuple[np.ndarray, ReadResult],
) -> None:
    original, result = photo_result
    receipt = result.receipt
    assert receipt.quality.receipt_found is True
    assert receipt.quality.accepted, receipt.quality.reasons
    height, width = result.rectified.shape[:2]
    assert receipt.image_size == (width, height)
    assert abs(width / height - original.shape[1] / original.shape[0]) < 0.05
    assert receipt.fields.total is not None and receipt.fields.total.value == Decimal("14.64")
    assert receipt.fields.date is not None and receipt.fields.date.value == dt.date(2024, 3, 14)
    assert "CORNER GROCERY" in receipt.text()
    assert receipt.ocr_engine == "litert"  # the default: the project's own models
    assert set(receipt.model_versions) == {"ocr.litert", "finder.litert"}  # shipped models


def test_every_stage_is_timed(photo_result: tuple[np.ndarray, ReadResult]) -> None:
    timings = photo_result[1].receipt.timings_ms
    assert set(timings) == STAGES
    assert all(ms >= 0 for ms in timings.values())
    parts = sum(ms for stage, ms in timings.items() if stage != "total")
    assert parts <= timings["total"] + 1


def test_field_line_ids_point_at_read_lines(photo_result: tuple[np.ndarray, ReadResult]) -> None:
    receipt = photo_result[1].receipt
    ids = {line.id for line in receipt.lines}
    assert receipt.fields.total is not None
    assert set(receipt.fields.total.lines) <= ids


def test_an_empty_countertop_needs_review(pipeline: Pipeline) -> None:
    receipt = pipeline.read(countertop("granite", seed=3)).receipt
    assert receipt.quality.receipt_found is False
    assert not receipt.quality.accepted and receipt.needs_review
    assert any("no receipt found" in reason for reason in receipt.review_reasons)


def test_a_sroie_scan_reads_its_key_fields(pipeline: Pipeline, sroie_dir: Path) -> None:
    result = pipeline.read(load_image(sroie_dir / "img" / "001.jpg"))
    receipt = result.receipt
    assert receipt.quality.receipt_found is True and receipt.quality.accepted
    assert result.rectified.shape[:2] == (1004, 439)  # a flat scan is read as it is
    assert receipt.fields.date is not None and receipt.fields.date.value == dt.date(2018, 10, 19)
    assert len(receipt.lines) > 20


def test_without_the_finder_the_frame_is_read_as_it_is(sroie_dir: Path) -> None:
    pipeline = build_pipeline(PipelineConfig(find_receipt=False))
    image = load_image(sroie_dir / "img" / "005.jpg")
    result = pipeline.read(image)
    assert result.rectified is image
    assert result.receipt.quality.receipt_found is None
    assert "finder.contour" not in result.receipt.model_versions


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        PipelineConfig.model_validate({"thread": 2})
    with pytest.raises(ValidationError, match="'tesseract'"):
        PipelineConfig.model_validate({"ocr": {"type": "nope"}})
    config = PipelineConfig.model_validate({"ocr": {"type": "tesseract", "psm": 6}})
    assert config.ocr.psm == 6


def test_rejects_what_is_not_a_bgr_image(pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        pipeline.read(np.zeros((10, 10), np.uint8))
