"""Rectifying a receipt from its corners (models/document/rectify.py, geometry.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.document import ContourFinder, rectify
from models.document.geometry import frame_quad, order_corners, quad_area, quad_size, touched_edges
from tests.models.synthetic import countertop, photograph, render_receipt


def test_order_corners_starts_top_left_and_goes_clockwise() -> None:
    shuffled = np.array([[10, 90], [100, 5], [0, 0], [95, 100]], np.float32)
    assert order_corners(shuffled).tolist() == [[0, 0], [100, 5], [95, 100], [10, 90]]
    with pytest.raises(ValueError, match="4 corners"):
        order_corners(np.zeros((3, 2)))


def test_quad_measures() -> None:
    quad = np.array([[0, 0], [40, 0], [40, 100], [0, 100]], np.float32)
    assert quad_size(quad) == (40.0, 100.0)
    assert quad_area(quad) == 4000.0
    assert touched_edges(quad, 200, 100, margin=0.01) == ["top", "bottom", "left"]
    assert touched_edges(frame_quad(200, 100), 200, 100, margin=0.0) == [
        "top",
        "right",
        "bottom",
        "left",
    ]


def test_rectified_receipt_matches_the_original() -> None:
    receipt = render_receipt()
    photo = photograph(receipt, countertop("granite", seed=5), 5, fill=0.75)
    found = ContourFinder().find(photo.image)
    assert found is not None
    flat = rectify(photo.image, found.quad)
    height, width = receipt.shape[:2]
    assert abs(flat.shape[1] / flat.shape[0] - width / height) < 0.05  # same proportions

    # Back at the original's size, the text lands where it was printed (within a few pixels,
    # hence the blur before comparing).
    def grey(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (0, 0), 3).ravel()

    correlation = np.corrcoef(grey(cv2.resize(flat, (width, height))), grey(receipt))[0, 1]
    assert correlation > 0.7


def test_output_size_is_bounded_and_never_enlarged() -> None:
    image = np.zeros((3000, 2000, 3), np.uint8)
    quad = np.array([[100, 100], [1900, 150], [1850, 2900], [120, 2950]], np.float32)
    assert max(rectify(image, quad, max_side=1000).shape[:2]) == 1000
    small = np.array([[10, 10], [60, 10], [60, 110], [10, 110]], np.float32)
    assert rectify(image, small).shape[:2] == (100, 50)


def test_whole_frame_quad_returns_the_image() -> None:
    image = np.random.default_rng(0).integers(0, 255, (300, 200, 3), np.uint8)
    assert rectify(image, frame_quad(200, 300)) is image
    assert rectify(image, frame_quad(200, 300), max_side=150).shape[:2] == (150, 100)
