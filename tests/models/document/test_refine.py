"""Edge refinement of a coarse receipt quad (models/document/refine.py) on generated photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.document.finder import ContourFinder, ContourFinderSettings
from models.document.refine import RefineSettings, refine_quad, refine_with_edges
from models.litert.corners import corner_error
from models.litert.textmap import quad_iou
from models.synth import generate_receipt

#: Development seeds (never the finder's test seeds, 5e12); these few are plain scenes.
SEEDS = (7 * 10**12 + 1, 7 * 10**12 + 2, 7 * 10**12 + 5, 7 * 10**12 + 6)
MANIFEST = Path(__file__).resolve().parents[3] / "models" / "artifacts" / "manifest.json"


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for seed in SEEDS:
        sample = generate_receipt(seed, (768, 1024))
        assert sample.label.corners is not None
        bgr = np.ascontiguousarray(sample.image[:, :, ::-1])
        out.append((bgr, np.asarray(sample.label.corners, np.float32)))
    return out


def _diagonal(quad: np.ndarray) -> float:
    return max(float(np.linalg.norm(quad[2] - quad[0])), float(np.linalg.norm(quad[3] - quad[1])))


def _paper(width: int = 600, height: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """A pale sheet with rows of dark print on a mid-grey textured counter, and its corners."""
    rng = np.random.default_rng(3)
    image = np.clip(rng.normal(95, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    quad = np.array([[150, 120], [430, 100], [455, 690], [170, 705]], np.float32)
    cv2.fillConvexPoly(image, np.round(quad).astype(np.int32), (225, 230, 232))
    for y in range(170, 640, 28):  # print: lines parallel to the top and bottom edges
        cv2.line(image, (200, y), (400, y - 8), (40, 40, 40), 3)
    return image, quad


def test_moves_noisy_corners_to_the_paper(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    rng = np.random.default_rng(0)
    before, after, iou = [], [], []
    for image, truth in scenes:
        coarse = truth + rng.normal(0, 0.02 * _diagonal(truth), truth.shape).astype(np.float32)
        refined = refine_quad(image, coarse)
        assert refined.shape == (4, 2) and refined.dtype == np.float32
        before.append(corner_error(coarse, truth.tolist()))
        after.append(corner_error(refined, truth.tolist()))
        iou.append(quad_iou(refined.tolist(), truth.tolist()))
    assert np.mean(after) < 0.5 * np.mean(before), (before, after)
    assert np.mean(after) < 0.01
    assert np.mean(iou) > 0.97


def test_keeps_an_exact_quad_in_place(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for image, truth in scenes:
        refined = refine_quad(image, truth)
        assert corner_error(refined, truth.tolist()) < 0.006
        assert quad_iou(refined.tolist(), truth.tolist()) > 0.98


def test_snaps_to_a_drawn_sheet_not_its_print() -> None:
    image, truth = _paper()
    coarse = truth + np.array([[12, -9], [-10, 14], [11, 8], [-13, -10]], np.float32)
    refined = refine_quad(image, coarse)
    assert np.abs(refined - truth).max() < 1.5, refined - truth


def test_corner_order_is_kept() -> None:
    image, truth = _paper()
    rolled = np.roll(truth, 1, axis=0)[::-1]  # counter-clockwise, from another corner
    refined = refine_quad(image, rolled + 5)
    assert np.abs(refined - rolled).max() < 1.5


def test_leaves_the_quad_alone_without_an_edge() -> None:
    quad = np.array([[100, 100], [400, 120], [380, 600], [90, 580]], np.float32)
    for image in (
        np.full((800, 600, 3), 128, np.uint8),
        np.clip(np.random.default_rng(1).normal(128, 20, (800, 600, 3)), 0, 255).astype(np.uint8),
    ):
        assert np.allclose(refine_quad(image, quad), quad, atol=1e-4)


def test_counts_the_sides_that_show_an_edge() -> None:
    image, quad = _paper()
    refined, edges = refine_with_edges(image, quad + 6)
    assert edges == 4 and np.allclose(refined, refine_quad(image, quad + 6))
    white = np.full((800, 600, 3), 235, np.uint8)  # white paper on a white bed: no edge
    white[200:600:30, 150:450] = 30
    assert refine_with_edges(white, quad)[1] == 0
    half = image.copy()
    half[:, :300] = (225, 230, 232)  # the left half as pale as the paper: its sides vanish
    assert 1 <= refine_with_edges(half, quad)[1] <= 3


def test_grey_frames_work() -> None:
    image, truth = _paper()
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    refined = refine_quad(grey, truth + 6)
    assert np.abs(refined - truth).max() < 1.5


def test_a_quad_partly_outside_the_frame() -> None:
    image, truth = _paper()
    # The sheet runs off the frame's left side: its left edge isn't in the picture.
    shifted = np.roll(image, -180, axis=1)
    shifted[:, -180:] = 95
    truth = truth - np.array([180, 0], np.float32)
    coarse = truth + np.array([[-8, 10], [9, -7], [-10, 6], [7, 9]], np.float32)
    refined = refine_quad(shifted, coarse)
    height, width = shifted.shape[:2]
    assert (refined >= 0).all() and (refined[:, 0] <= width - 1).all()
    assert (refined[:, 1] <= height - 1).all()
    # The visible right side snaps onto the paper; the corners off the frame are clipped.
    assert np.abs(refined[1:3] - truth[1:3]).max() < 1.5
    assert (refined[[0, 3], 0] == 0).all()


def test_never_makes_a_wild_quad() -> None:
    image, truth = _paper()
    # A quad far from the sheet, mostly over the counter: whatever it finds, it stays sane.
    far = truth + np.array([260, 0], np.float32)
    refined = refine_quad(image, far)
    assert np.linalg.norm(refined - np.clip(far, 0, [599, 799]), axis=1).max() < 0.15 * 800


def test_degenerate_input_is_returned_as_is() -> None:
    image, _ = _paper()
    point = np.full((4, 2), 300, np.float32)
    assert np.array_equal(refine_quad(image, point), point)
    nan = np.full((4, 2), np.nan, np.float32)
    assert np.isnan(refine_quad(image, nan)).all()


def test_settings_can_switch_the_retry_off() -> None:
    image, truth = _paper()
    narrow = RefineSettings(band=0.01, retry_band=0.0)
    coarse = truth + np.array([[0, -40], [0, -40], [0, 0], [0, 0]], np.float32)
    # The top edge lies beyond a 1 % band: kept where it was, the others still snap.
    refined = refine_quad(image, coarse, narrow)
    assert np.abs(refined[:2] - coarse[:2]).max() < 3.0
    widened = refine_quad(image, coarse, RefineSettings(band=0.01, retry_band=0.08))
    assert np.abs(widened - truth).max() < 1.5


def test_contour_finder_refines_when_asked(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    image, truth = scenes[0]
    plain = ContourFinder(ContourFinderSettings(refine=False)).find(image)
    refined = ContourFinder().find(image)
    assert plain is not None and refined is not None
    assert not np.allclose(plain.quad, refined.quad)
    assert corner_error(refined.quad, truth.tolist()) <= corner_error(plain.quad, truth.tolist())
    assert corner_error(refined.quad, truth.tolist()) < 0.005


def _has_finder_model() -> bool:
    try:
        return "finder" in json.loads(MANIFEST.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return False


@pytest.mark.skipif(not _has_finder_model(), reason="no finder model in models/artifacts")
def test_litert_finder_refines_when_asked(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    from models.litert.finder import LiteRTFinder
    from models.ocr.litert import ARTIFACTS

    coarse, fine = LiteRTFinder(ARTIFACTS, refine=False), LiteRTFinder(ARTIFACTS)
    errors: dict[str, list[float]] = {"coarse": [], "fine": []}
    for image, truth in scenes:
        a, b = coarse.find(image), fine.find(image)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            errors["coarse"].append(corner_error(a.quad, truth.tolist()))
            errors["fine"].append(corner_error(b.quad, truth.tolist()))
    assert errors["fine"], "the model found none of the receipts"
    assert np.mean(errors["fine"]) <= np.mean(errors["coarse"]) + 0.002
