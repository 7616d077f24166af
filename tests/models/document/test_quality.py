"""The quality gate (models/document/quality.py): blur, light, glare, cut-off, no receipt."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from models.document import Detection, QualityThresholds, assess_quality
from models.document.geometry import frame_quad
from models.imageio import load_image
from tests.models.synthetic import render_receipt


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    return render_receipt()


def test_a_clean_receipt_is_accepted(sharp: np.ndarray) -> None:
    quality = assess_quality(sharp)
    assert quality.accepted and quality.reasons == []
    assert quality.sharpness is not None and quality.sharpness > 100
    assert quality.brightness is not None and 150 < quality.brightness < 250
    assert quality.glare == 0.0
    assert quality.receipt_found is None  # nobody looked for it


def test_blur_is_rejected(sharp: np.ndarray) -> None:
    quality = assess_quality(cv2.GaussianBlur(sharp, (0, 0), 3))
    assert not quality.accepted
    assert any(r.startswith("blurred") for r in quality.reasons)


def test_darkness_is_rejected(sharp: np.ndarray) -> None:
    quality = assess_quality((sharp * 0.2).astype(np.uint8))
    assert not quality.accepted
    assert any(r.startswith("too dark") for r in quality.reasons)


def test_glare_on_a_photo_is_rejected_but_a_scans_white_is_not(sharp: np.ndarray) -> None:
    shiny = sharp.copy()
    height, width = shiny.shape[:2]
    cv2.circle(shiny, (width // 2, height // 2), width // 4, (255, 255, 255), -1)
    photo = Detection(quad=frame_quad(width, height) * 0.5 + 10, score=0.9)
    quality = assess_quality(shiny, detection=photo, frame_size=(2 * width, 2 * height))
    assert any(r.startswith("glare") for r in quality.reasons)
    scan = Detection(quad=frame_quad(width, height), score=0.5, flat_scan=True)
    quality = assess_quality(shiny, detection=scan, frame_size=(width, height))
    assert quality.accepted, quality.reasons
    assert quality.glare is not None and quality.glare > 0.08


def test_cut_off_and_missing_receipts_are_reported(sharp: np.ndarray) -> None:
    touching = Detection(
        quad=np.array([[100, 0], [500, 0], [500, 300], [100, 300]], np.float32), score=0.8
    )
    quality = assess_quality(sharp, detection=touching, frame_size=(800, 600))
    assert quality.receipt_found is True
    assert quality.reasons == ["receipt may be cut off at the top edge of the frame"]
    quality = assess_quality(sharp, detection=None, frame_size=(800, 600))
    assert quality.receipt_found is False and not quality.accepted
    assert "no receipt found" in quality.reasons[0]


def test_other_receipts_in_the_photo_are_reported(sharp: np.ndarray) -> None:
    quad = np.array([[100, 50], [400, 50], [400, 550], [100, 550]], np.float32)
    other = np.array([[500, 100], [700, 100], [700, 400], [500, 400]], np.float32)
    alone = assess_quality(sharp, detection=Detection(quad, 0.9), frame_size=(800, 600))
    assert alone.accepted
    two = assess_quality(
        sharp, detection=Detection(quad, 0.9, others=(other,)), frame_size=(800, 600)
    )
    assert not two.accepted
    assert two.reasons == [
        "1 other receipt in the photo; only the largest was read: scan each receipt on its own"
    ]


def test_sroie_scans_pass_the_gate(sroie_dir: Path) -> None:
    for sample in ("000", "017", "100", "333", "512"):
        image = load_image(sroie_dir / "img" / f"{sample}.jpg")
        scan = Detection(quad=frame_quad(image.shape[1], image.shape[0]), score=0.5, flat_scan=True)
        quality = assess_quality(image, detection=scan, frame_size=(image.shape[1], image.shape[0]))
        assert quality.accepted, (sample, quality.reasons)


def test_thresholds_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="min_sharpnes"):
        QualityThresholds.model_validate({"min_sharpnes": 10})
