"""Receipt finder labels, decoding and metrics (NumPy parts, no TensorFlow)."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from models.document.geometry import order_corners
from models.litert.corners import (
    INPUT_SIZE,
    MAP_CHANNELS,
    PAPER,
    FinderScore,
    corner_error,
    corner_heatmaps,
    decode_heatmaps,
    finder_targets,
    map_size,
    other_quads,
    prepare_frame,
)
from models.litert.textmap import quad_iou
from models.training.finder_data import RENDER_SIZE, augment, bank_batches, build_bank, example

CORNERS = [(100.0, 60.0), (300.0, 70.0), (290.0, 450.0), (90.0, 440.0)]


def test_heatmaps_decode_back_to_the_corners_within_a_pixel():
    maps = corner_heatmaps(CORNERS, RENDER_SIZE)
    mw, mh = map_size()
    assert maps.shape == (mh, mw, 4) and maps.max() <= 1.0
    decoded = decode_heatmaps(maps, RENDER_SIZE)
    np.testing.assert_allclose(decoded, np.array(CORNERS), atol=1.0)
    assert corner_error(decoded, CORNERS) < 0.003


def test_no_receipt_no_peaks():
    assert not corner_heatmaps(None, RENDER_SIZE).any()


def test_corner_error_is_a_share_of_the_diagonal():
    square = [(0.0, 0.0), (30.0, 0.0), (30.0, 40.0), (0.0, 40.0)]  # diagonal 50
    moved = np.array(square) + np.array([5.0, 0.0])
    assert corner_error(moved, square) == pytest.approx(0.1)


def test_scores_count_misses_and_false_quads():
    score = FinderScore([], [])
    truth = np.array(CORNERS, np.float32)
    score.add(truth, CORNERS)
    score.add(None, CORNERS)
    score.add(truth, None)
    score.add(None, None)
    s = score.summary()
    assert s["mean_iou"] == pytest.approx(0.5) and s["missed"] == 1
    assert (s["empties"], s["false_quads"]) == (2, 1)


def test_examples_from_the_generator():
    image, maps, presence, quad = example(11, empty=False)
    assert image.shape == (INPUT_SIZE[1], INPUT_SIZE[0], 3) and image.dtype == np.float32
    assert presence == 1.0 and quad is not None
    np.testing.assert_allclose(decode_heatmaps(maps, RENDER_SIZE), quad, atol=2.5)
    image, maps, presence, quad = example(11, empty=True)
    assert presence == 0.0 and quad is None and not maps.any()
    assert prepare_frame(np.zeros((40, 30, 3), np.uint8)).shape == (256, 192, 3)


def test_bank_renders_resumes_and_feeds_batches(tmp_path):
    bank = build_bank(tmp_path, 5, seed=123, empty_share=0.4, shard=3, workers=1)
    assert bank.frames.shape == (5, INPUT_SIZE[1], INPUT_SIZE[0], 3) and len(bank) == 5
    assert bank.frames.dtype == np.uint8
    empty = np.isnan(bank.corners).any(axis=(1, 2))
    assert 0 < empty.sum() < 5  # this seed gives both kinds
    for quad in bank.corners[~empty]:  # screen order, inside the input
        np.testing.assert_allclose(order_corners(quad), quad)
        assert (quad >= 0).all() and (quad[:, 0] < INPUT_SIZE[0]).all()
    first = (tmp_path / "shard-0000.npz").stat().st_mtime_ns
    again = build_bank(tmp_path, 5, seed=123, empty_share=0.4, shard=3, workers=1)
    assert (tmp_path / "shard-0000.npz").stat().st_mtime_ns == first  # not rendered again
    np.testing.assert_array_equal(again.frames, bank.frames)
    scans = build_bank(tmp_path / "scans", 2, seed=7, scans=True, workers=1)
    assert not np.isnan(scans.corners).any()  # a scan always shows its receipt
    both = bank + scans
    assert len(both) == 7 and both.others.shape == (7, 2, 4, 2)
    images, maps, presence = next(bank_batches(bank, batch_size=8, seed=1))
    assert images.shape == (8, INPUT_SIZE[1], INPUT_SIZE[0], 3) and images.min() >= 0
    assert images.max() <= 1
    assert maps.shape[-1] == MAP_CHANNELS
    for k in range(8):
        assert bool(maps[k, :, :, :PAPER].any()) == bool(presence[k, 0])
        assert bool(presence[k, 0]) <= bool(maps[k, :, :, PAPER].any())


def test_augment_moves_the_corners_with_the_picture():
    """A white quad on black: after any pose, the augmented corners sit on the white quad."""
    frame = np.zeros((INPUT_SIZE[1], INPUT_SIZE[0], 3), np.uint8)
    quad = np.array([[50, 40], [140, 50], [130, 210], [45, 200]], np.float32)
    cv2.fillConvexPoly(frame, quad.astype(np.int32), (255, 255, 255))
    other = np.array([[150, 150], [185, 150], [185, 250], [150, 250]], np.float32)
    cv2.fillConvexPoly(frame, other.astype(np.int32), (0, 0, 200))
    rng = random.Random(5)
    for _ in range(20):
        img, pts, more = augment(frame, quad, other[None], rng)
        assert pts.shape == (4, 2) and more.shape == (1, 4, 2)
        np.testing.assert_allclose(order_corners(pts), pts)
        inside = pts + (pts.mean(axis=0) - pts) * 0.1  # a little towards the centre
        for x, y in inside:
            assert img[round(y), round(x)].mean() > 0.5
        cx, cy = more[0].mean(axis=0)
        if 0 <= cx < INPUT_SIZE[0] and 0 <= cy < INPUT_SIZE[1]:  # the red card moved alike
            pixel = img[round(cy), round(cx)]
            assert pixel[2] > pixel[0] + 0.2 or pixel[0] > pixel[2] + 0.2  # RGB or BGR red
    none = np.full((0, 4, 2), np.nan, np.float32)
    img, pts, more = augment(frame, np.full((4, 2), np.nan, np.float32), none, rng)
    assert np.isnan(pts).all() and img.shape == frame.shape and more.shape == (0, 4, 2)


def test_paper_map_covers_every_receipt_and_other_quads_finds_the_second():
    main = [(40.0, 40.0), (120.0, 40.0), (120.0, 230.0), (40.0, 230.0)]
    second = [(140.0, 60.0), (185.0, 60.0), (185.0, 160.0), (140.0, 160.0)]
    maps = finder_targets(main, [second], INPUT_SIZE)
    assert maps.shape == (*map_size()[::-1], MAP_CHANNELS)
    paper = maps[:, :, PAPER]
    assert paper[30, 20] == pytest.approx(1.0) and paper[25, 40] == pytest.approx(1.0)
    assert paper[5, 5] == 0.0
    found = other_quads(paper, np.array(main, np.float32), INPUT_SIZE)
    assert len(found) == 1
    assert quad_iou(found[0].tolist(), second) > 0.8
    np.testing.assert_allclose(order_corners(found[0]), found[0])
    alone = finder_targets(main, [], INPUT_SIZE)[:, :, PAPER]
    assert other_quads(alone, np.array(main, np.float32), INPUT_SIZE) == []
    assert not finder_targets(None, [], INPUT_SIZE).any()


def test_a_faint_halo_is_not_a_receipt_but_a_small_clear_corner_is():
    main = np.array([(40.0, 40.0), (120.0, 40.0), (120.0, 230.0), (40.0, 230.0)], np.float32)
    paper = finder_targets(main.tolist(), [], INPUT_SIZE)[:, :, PAPER] * 0.97
    gw, gh = map_size()
    sx, sy = gw / INPUT_SIZE[0], gh / INPUT_SIZE[1]
    # a band of 0.6 along the right edge, past the cleared cells: the map's halo
    paper[round(40 * sy) : round(230 * sy), round(123 * sx) : round(136 * sx)] = 0.6
    assert other_quads(paper, main, INPUT_SIZE) == []
    # the corner of a second receipt showing past the main one: 5 % of its area, clear paper
    paper[round(150 * sy) : round(175 * sy), round(150 * sx) : round(175 * sx)] = 0.95
    found = other_quads(paper, main, INPUT_SIZE)
    assert len(found) == 1
    assert quad_iou(found[0].tolist(), [(150, 150), (175, 150), (175, 175), (150, 175)]) > 0.6
