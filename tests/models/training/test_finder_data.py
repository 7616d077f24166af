"""Receipt finder labels, decoding and metrics (NumPy parts, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from models.litert.corners import (
    INPUT_SIZE,
    FinderScore,
    corner_error,
    corner_heatmaps,
    decode_heatmaps,
    map_size,
    prepare_frame,
)
from models.training.finder_data import RENDER_SIZE, example

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
