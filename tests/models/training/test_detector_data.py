"""Text-line detector labels and box extraction (NumPy parts, no TensorFlow)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models.litert.textmap import (
    STRIDE,
    DetectionScore,
    boxes_from_map,
    core_target,
    match_boxes,
    page_scale,
    prepare_page,
    quad_iou,
)
from models.training import detector_data
from models.training.detector_data import Page, batches, example, quad_to_box, synth_page

BOXES = [(20.0, 10.0, 180.0, 30.0), (200.0, 12.0, 300.0, 30.0), (20.0, 40.0, 250.0, 60.0)]


def as_quad(b: tuple[float, float, float, float]) -> tuple[tuple[float, float], ...]:
    x0, y0, x1, y1 = b
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def test_cores_of_adjacent_rows_do_not_touch_and_grow_back_to_the_boxes():
    target = core_target((80, 320), BOXES)
    assert target.dtype == np.uint8 and set(np.unique(target)) == {0, 1}
    assert not target[33:37].any()  # the gap between the rows stays empty
    found = boxes_from_map(target.astype(np.float32))
    assert len(found) == 3
    for got, want in zip(found, BOXES, strict=True):  # also in reading order
        assert quad_iou(got.quad, as_quad(want)) > 0.85


def test_boxes_come_back_in_page_pixels_and_weak_blobs_are_dropped():
    prob = core_target((80, 320), BOXES).astype(np.float32)
    prob[70:74, 10:40] = 0.55  # above threshold, below min_score
    found = boxes_from_map(prob, scale=0.5)
    assert len(found) == 3
    (x0, _), _, (x1, _), _ = found[0].quad
    assert x0 == pytest.approx(2 * 20, abs=4) and x1 == pytest.approx(2 * 180, abs=4)
    assert boxes_from_map(np.zeros((64, 64), np.float32)) == []


def test_f1_at_iou_half_matches_one_to_one():
    truth = [as_quad(b) for b in BOXES]
    shifted = as_quad((20.0, 15.0, 180.0, 35.0))  # IoU 0.6 with the first box
    far = as_quad((0.0, 70.0, 10.0, 79.0))
    score = match_boxes([shifted, truth[0], far, truth[2]], truth)
    assert (score.true_pos, score.predicted, score.truth) == (2, 4, 3)
    assert score.precision == 0.5 and score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    total = score + DetectionScore(3, 3, 3)
    assert (total.true_pos, total.predicted, total.truth) == (5, 7, 6)
    assert match_boxes([], truth).f1 == 0.0


def test_pages_are_scaled_by_width_capped_by_height_and_padded():
    assert page_scale(768, 1000).scale == 0.5
    tall = page_scale(400, 4000, target_width=384, max_side=1280)
    assert tall.height == 1280 and tall.scale == pytest.approx(0.32)
    page, ps = prepare_page(np.zeros((1000, 768), np.uint8))
    assert page.shape[0] % STRIDE == 0 and page.shape[1] % STRIDE == 0
    assert (ps.width, ps.height) == (384, 500)
    assert page[: ps.height, : ps.width].max() == 0.0 and page[ps.height :].min() == 1.0


def test_training_windows_carry_their_targets(tmp_path):
    gray = np.full((100, 400), 255, np.uint8)
    for x0, y0, x1, y1 in BOXES:
        gray[int(y0) : int(y1), int(x0) : int(x1)] = 0
    page = Page("p", gray, BOXES)
    img, target, _ = example(page, random.Random(3), target_width=400, crop=512, jitter=(1.0, 1.0))
    assert img.shape == (512, 512) and target.shape == (512, 512)
    assert img.min() >= 0.0 and img.max() <= 1.0
    assert target.sum() > 0.3 * sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in BOXES)
    assert img[target == 1].mean() < 0.5 < img[target == 0].mean()  # cores lie on the ink


def test_synthetic_pages_have_their_line_boxes():
    page = synth_page(7)
    assert page.boxes and page.gray.ndim == 2
    h, w = page.gray.shape
    assert all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in page.boxes)
    assert quad_to_box(((3, 4), (10, 2), (11, 9), (2, 8))) == (2, 2, 11, 9)


def test_batches_refuse_validation_pages():
    page = Page("val-1", np.zeros((10, 10), np.uint8), [])
    with pytest.raises(ValueError, match="validation receipts"):
        next(batches([page], batch_size=1, seed=1, forbidden_ids=frozenset({"val-1"})))


def test_synthetic_pages_fill_the_pool_then_refresh_every_n_batches(monkeypatch):
    made: list[int] = []

    def page(seed: int) -> Page:
        made.append(seed)
        return Page(f"synth-{seed}", np.full((64, 64), 255, np.uint8), [(4.0, 4.0, 40.0, 16.0)])

    monkeypatch.setattr(detector_data, "synth_page", page)
    for every, expected in ((1, 10), (3, 5)):  # pool of 2 filled by batches 0 and 1
        made.clear()
        stream = detector_data.batches(
            [], batch_size=1, seed=1, synth_pool=2, synth_every=every, crop=32
        )
        for _ in range(10):
            next(stream)
        assert len(made) == expected and len(set(made)) == expected


def test_faded_ink_keeps_the_paper_and_fades_text_towards_one_side():
    img = np.full((64, 256), 0.9, np.float32)
    img[20:40, 8:248] = 0.1  # one dark line across the window
    faded = detector_data.fade_ink(img, random.Random(5))
    assert faded[:16] == pytest.approx(img[:16])  # paper stays paper
    darkness = 0.9 - faded[30, 8:248]
    assert darkness.min() < 0.5 * 0.8 <= darkness.max() + 1e-6  # faded to under half somewhere
    assert darkness.min() >= 0.15 * 0.8 - 1e-6  # ...but never gone
    page = Page("p", (img * 255).astype(np.uint8), [(8.0, 20.0, 248.0, 40.0)])
    rng_a, rng_b = random.Random(1), random.Random(1)
    _, target, _ = example(page, rng_a, target_width=256, crop=64, jitter=(1, 1))
    _, faded_target, _ = example(page, rng_b, target_width=256, crop=64, jitter=(1, 1), fade=1.0)
    assert (faded_target == target).all()  # the text is still there to find
