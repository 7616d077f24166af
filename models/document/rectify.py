"""Rectifying a found receipt (the perspective warp from its four corners to a flat rectangle),
and cutting a text line out of it the same way."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from models.document.geometry import frame_quad, order_corners, quad_size

#: Longest side of a rectified receipt. Receipt text stays legible well below it; larger photos
#: only cost OCR time.
MAX_SIDE = 2400


def rectify(image: np.ndarray, quad: np.ndarray, *, max_side: int = MAX_SIDE) -> np.ndarray:
    """The region inside `quad` warped to an upright rectangle.

    The output keeps the receipt's resolution in the photo (the longer of each pair of
    opposite sides), never enlarges it, and is scaled down to at most `max_side` pixels on its
    longer side. A quad that is the whole frame returns the image itself (scaled down if needed).
    """
    if image.size == 0:
        raise ValueError("cannot rectify an empty image")
    height, width = image.shape[:2]
    corners = order_corners(quad)
    if np.allclose(corners, frame_quad(width, height), atol=1.0):
        return _fit(image, max_side)
    out_w, out_h = quad_size(corners)
    scale = min(1.0, max_side / max(out_w, out_h))
    out_w, out_h = max(1, round(out_w * scale)), max(1, round(out_h * scale))
    target = np.array(
        [[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32
    )
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


#: The margin around a text line's box in the crop the recognizer reads (and is trained on), as
#: a share of the box's height: one figure for training, evaluation and the engine.
LINE_PAD = 0.1


def crop_quad(
    gray: np.ndarray, quad: Iterable[Iterable[float]], pad: float = LINE_PAD
) -> np.ndarray:
    """A text line's quad (clockwise from top-left, possibly turned or slanted) warped to an
    upright crop at the image's own scale, with a margin of `pad` times the quad's height on
    every side (what the recognizer is trained on and reads; pixels past the image repeat its
    edge)."""
    q = np.array([tuple(p) for p in quad], np.float32)
    w = max(float(np.linalg.norm(q[1] - q[0])), float(np.linalg.norm(q[2] - q[3])), 1.0)
    h = max(float(np.linalg.norm(q[3] - q[0])), float(np.linalg.norm(q[2] - q[1])), 1.0)
    m = pad * h
    dst = np.array([[m, m], [w + m, m], [w + m, h + m], [m, h + m]], np.float32)
    mat = cv2.getPerspectiveTransform(q, dst)
    out = cv2.warpPerspective(
        gray,
        mat,
        (round(w + 2 * m), round(h + 2 * m)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(out, np.uint8)


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
