"""Line boxes from core maps, and the per-model growth measured on held-out pages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.document.geometry import quad_frame
from models.litert.textmap import (
    DEFAULT_GROWTH,
    Growth,
    TextBox,
    boxes_from_map,
    calibrate_growth,
    merge_row_pieces,
)

TRUTH = [(20.0, 10.0, 180.0, 30.0), (20.0, 50.0, 120.0, 70.0)]  # two 20 px lines


def thick_cores(shape=(100, 200), height_share=0.7, end_share=0.1):
    """A map whose cores are thicker than the training target: height_share of each line's
    height, shortened by end_share of its height at each end."""
    prob = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in TRUTH:
        h = y1 - y0
        cy = (y0 + y1) / 2
        prob[
            round(cy - height_share * h / 2) : round(cy + height_share * h / 2),
            round(x0 + end_share * h) : round(x1 - end_share * h),
        ] = 0.9
    return prob


def test_calibrated_growth_gives_back_the_true_boxes_where_the_default_overshoots():
    prob = thick_cores()
    growth = calibrate_growth([(prob, 1.0, TRUTH)])
    assert growth.height == pytest.approx(1 / 0.7, rel=0.1)
    assert growth.end == pytest.approx(0.1, abs=0.06)
    fitted = boxes_from_map(prob, growth=growth)
    default = boxes_from_map(prob)
    for found, plain, (x0, y0, x1, y1) in zip(fitted, default, TRUTH, strict=True):
        (fx0, fy0), _, (fx1, fy1), _ = found.quad
        assert abs((fy1 - fy0) - (y1 - y0)) < 2 and abs(fx0 - x0) < 3 and abs(fx1 - x1) < 3
        (_, py0), _, (_, py1), _ = plain.quad
        assert (py1 - py0) > 1.3 * (y1 - y0)  # the target's inverse grows these too tall


def test_no_matching_core_keeps_the_default_and_scale_is_applied():
    assert calibrate_growth([(np.zeros((40, 40), np.float32), 1.0, TRUTH)]) == DEFAULT_GROWTH
    prob = thick_cores()
    half = calibrate_growth([(prob, 2.0, [tuple(v / 2 for v in b) for b in TRUTH])])
    assert half.height == pytest.approx(calibrate_growth([(prob, 1.0, TRUTH)]).height)
    assert isinstance(half, Growth)


def _box(x0: float, y0: float, x1: float, y1: float, score: float = 0.9) -> TextBox:
    return TextBox(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), score)


def test_close_pieces_of_a_row_are_joined_and_columns_are_not():
    boxes = [
        _box(77, 203, 277, 229),  # 'AIK HUAT'
        _box(284, 202, 500, 228),  # 'HARDWARE', 7 px on: joined
        _box(83, 300, 300, 320),  # an item ...
        _box(600, 301, 680, 321),  # ... and its price, 15 heights on: apart
        _box(690, 290, 760, 340),  # twice as tall: apart
    ]
    merged = merge_row_pieces(boxes, 0.5)
    assert [(*b.quad[0], *b.quad[2]) for b in merged] == [
        (77, 202, 500, 229),
        (83, 300, 300, 320),
        (600, 301, 680, 321),
        (690, 290, 760, 340),
    ]
    assert merged[0].score == pytest.approx(0.9)
    assert merge_row_pieces(boxes, 0) == boxes


def _frame_of(box: TextBox) -> tuple[float, float, float, float, float]:
    cx, cy, angle, length, height = quad_frame(box.quad)
    return cx, cy, float(np.degrees(angle)), length, height


def tilted_band(prob: np.ndarray, centre: tuple[float, float], degrees: float, size: tuple) -> None:
    """Draw a filled rectangle (length, thickness) turned by `degrees` into a map."""
    pts = cv2.boxPoints((centre, size, degrees))
    cv2.fillPoly(prob, [np.round(pts).astype(np.int32)], 0.9)


def test_a_tilted_row_gets_a_box_along_it_not_an_upright_box_over_its_neighbours():
    prob = np.zeros((200, 400), np.float32)
    tilted_band(prob, (200, 60), 3.0, (300, 8))  # 300 px long, 8 thick, 3 degrees: rises 16 px
    tilted_band(prob, (200, 120), 0.0, (300, 8))  # an upright row
    tilted, upright = boxes_from_map(prob)
    cx, cy, degrees, length, height = _frame_of(tilted)
    assert (cx, cy, degrees) == pytest.approx((200, 60, 3.0), abs=0.5)
    assert height == pytest.approx(2 * 9, abs=2.5)  # the core's thickness grown back, not 50
    assert length == pytest.approx(300 + 2 * 0.25 * height, abs=3)
    assert upright.quad[0][1] == upright.quad[1][1] and upright.quad[0][0] == upright.quad[3][0]
    assert _frame_of(upright)[4] == pytest.approx(2 * 9, abs=0.5)  # fillPoly fills 9 rows


def test_short_cores_and_steep_blobs_stay_upright_and_slight_slants_are_followed():
    prob = np.zeros((200, 400), np.float32)
    tilted_band(prob, (60, 150), 8.0, (24, 8))  # a lone character, three thicknesses long
    tilted_band(prob, (200, 50), 30.0, (120, 10))  # steeper than any row: a stamp, a blob
    tilted_band(prob, (250, 150), 1.0, (200, 8))  # rises 3.5 px along 200
    char, blob, slight = sorted(boxes_from_map(prob), key=lambda b: b.quad[0][0] + b.quad[0][1])
    for box in (char, blob):
        assert box.quad[0][1] == box.quad[1][1], box
    _, _, degrees, _, height = _frame_of(slight)
    assert degrees == pytest.approx(1.0, abs=0.3)
    assert height == pytest.approx(2 * 10, abs=1.5)  # a pixel of staircase; upright: 25


def test_tilted_pieces_of_a_row_are_joined_along_the_row():
    prob = np.zeros((200, 500), np.float32)
    angle = np.radians(4.0)
    for along, length in ((-120, 180), (110, 200)):  # two pieces 40 px apart on one slanted row
        centre = (250 + along * np.cos(angle), 100 + along * np.sin(angle))
        tilted_band(prob, centre, 4.0, (length, 8))
    pieces = boxes_from_map(prob)
    assert len(pieces) == 2
    (joined,) = merge_row_pieces(pieces, 2.0)
    _, _, degrees, length, height = _frame_of(joined)
    assert degrees == pytest.approx(4.0, abs=0.5)
    assert height == pytest.approx(_frame_of(pieces[0])[4], abs=1.5)
    assert length == pytest.approx(180 + 40 + 200 + 2 * 0.25 * height, abs=5)
    assert merge_row_pieces(pieces, 0.5) == pieces  # 31 px between the boxes: over half a height
