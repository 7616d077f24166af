"""Quadrilaterals in image pixels: corner order, size, a line box's frame, and where they touch
the frame."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Frame edges, in the order `touched_edges` reports them.
EDGES = ("top", "right", "bottom", "left")


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four points as a float32 (4, 2) array, clockwise (on screen) from the top-left one.

    The top-left corner is the one with the smallest x + y, so a receipt lying sideways in the
    frame stays sideways: we don't guess which way up the text is.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if pts.shape != (4, 2):
        raise ValueError(f"a quadrilateral has 4 corners, got {pts.shape[0]}")
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # increasing angle is clockwise on screen (y points down)
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def frame_quad(width: int, height: int) -> np.ndarray:
    """The whole frame as a quadrilateral."""
    return np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32
    )


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """(width, height) of the rectangle a quad is rectified to: its longer opposite sides."""
    tl, tr, br, bl = order_corners(quad)
    width = max(float(np.linalg.norm(tr - tl)), float(np.linalg.norm(br - bl)))
    height = max(float(np.linalg.norm(bl - tl)), float(np.linalg.norm(br - tr)))
    return width, height


def quad_area(quad: np.ndarray) -> float:
    """Area of a simple quadrilateral (shoelace formula)."""
    x, y = np.asarray(quad, dtype=np.float64).reshape(4, 2).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def touched_edges(quad: np.ndarray, width: int, height: int, margin: float) -> list[str]:
    """The frame edges a quad comes within `margin` (a share of the frame's size) of."""
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    mx, my = margin * width, margin * height
    near = {
        "top": bool((pts[:, 1] <= my).any()),
        "right": bool((pts[:, 0] >= width - 1 - mx).any()),
        "bottom": bool((pts[:, 1] >= height - 1 - my).any()),
        "left": bool((pts[:, 0] <= mx).any()),
    }
    return [edge for edge in EDGES if near[edge]]


def quad_frame(
    quad: Sequence[Sequence[float]] | np.ndarray,
) -> tuple[float, float, float, float, float]:
    """(cx, cy, angle, length, height) of a rectangle quad, clockwise from top-left, as given (a
    text line's box: its angle is its top side's direction, its height its left side)."""
    # plain floats, not numpy: this runs for every OCR line of every receipt read, and numpy's
    # per-call overhead on four points was a third of field extraction's time
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ((float(p[0]), float(p[1])) for p in quad)
    tx, ty, lx, ly = x1 - x0, y1 - y0, x3 - x0, y3 - y0
    cx, cy = (x0 + x1 + x2 + x3) / 4, (y0 + y1 + y2 + y3) / 4
    return cx, cy, math.atan2(ty, tx), math.hypot(tx, ty), math.hypot(lx, ly)
