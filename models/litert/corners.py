"""The receipt finder's geometry, shared by its training and its runtime (NumPy + OpenCV only).

The finder sees the whole frame resized to `INPUT_SIZE` (aspect ignored: corners are given as
shares of the frame's width and height, so any frame shape maps onto it) in RGB [0, 1]. It
answers a presence probability and four corner heat maps (top-left, top-right, bottom-right,
bottom-left) at 1/`STRIDE` of the input; each corner is the probability-weighted centre of the
window around its map's peak, which gives sub-cell precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.litert.textmap import quad_iou

#: Input width, height.
INPUT_SIZE = (192, 256)
STRIDE = 4
#: Gaussian spread of a corner's target, in heat-map cells.
SIGMA = 1.0
#: Half-size of the window a corner is refined in, in cells.
WINDOW = 2


def map_size(input_size: tuple[int, int] = INPUT_SIZE) -> tuple[int, int]:
    """Heat-map width, height."""
    return input_size[0] // STRIDE, input_size[1] // STRIDE


def prepare_frame(rgb: np.ndarray, input_size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """The finder's input [H, W, 3] float32 in [0, 1] from an RGB uint8 frame."""
    small = cv2.resize(rgb, input_size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32) / 255.0


def corner_heatmaps(
    corners: Sequence[Sequence[float]] | None,
    frame_size: tuple[int, int],
    input_size: tuple[int, int] = INPUT_SIZE,
) -> np.ndarray:
    """Target maps [h, w, 4] float32 in [0, 1]: a Gaussian at each corner; zeros when None."""
    mw, mh = map_size(input_size)
    maps = np.zeros((mh, mw, 4), np.float32)
    if corners is None:
        return maps
    ys, xs = np.mgrid[0:mh, 0:mw].astype(np.float32)
    for k, (x, y) in enumerate(corners):
        cx = x / frame_size[0] * mw - 0.5
        cy = y / frame_size[1] * mh - 0.5
        maps[:, :, k] = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * SIGMA**2))
    return maps


def decode_heatmaps(maps: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Corners (4, 2) float32 in frame pixels from heat maps [h, w, 4] (probabilities)."""
    mh, mw = maps.shape[:2]
    out = np.zeros((4, 2), np.float32)
    for k in range(4):
        m = maps[:, :, k]
        r, c = np.unravel_index(int(np.argmax(m)), m.shape)
        r0, r1 = max(0, r - WINDOW), min(mh, r + WINDOW + 1)
        c0, c1 = max(0, c - WINDOW), min(mw, c + WINDOW + 1)
        window = m[r0:r1, c0:c1]
        weights = window / max(float(window.sum()), 1e-9)
        ys, xs = np.mgrid[r0:r1, c0:c1]
        cx, cy = float((weights * xs).sum()), float((weights * ys).sum())
        out[k] = ((cx + 0.5) / mw * frame_size[0], (cy + 0.5) / mh * frame_size[1])
    return out


def corner_error(predicted: np.ndarray, truth: Sequence[Sequence[float]]) -> float:
    """Mean distance of corresponding corners, as a share of the true quad's longer diagonal."""
    t = np.asarray(truth, np.float32)
    diag = max(float(np.linalg.norm(t[2] - t[0])), float(np.linalg.norm(t[3] - t[1])), 1e-6)
    return float(np.linalg.norm(np.asarray(predicted, np.float32) - t, axis=1).mean() / diag)


@dataclass
class FinderScore:
    """Finder metrics over a set of frames with receipts and a set of empty ones."""

    ious: list[float]
    corner_errors: list[float]
    missed: int = 0  # a receipt was there, none reported
    empties: int = 0
    false_quads: int = 0  # no receipt, a quad reported

    def add(self, predicted: np.ndarray | None, truth: Sequence[Sequence[float]] | None) -> None:
        if truth is None:
            self.empties += 1
            self.false_quads += predicted is not None
        elif predicted is None:
            self.missed += 1
            self.ious.append(0.0)
            self.corner_errors.append(1.0)
        else:
            self.ious.append(quad_iou(predicted.tolist(), truth))
            self.corner_errors.append(corner_error(predicted, truth))

    def summary(self) -> dict[str, float]:
        return {
            "mean_iou": float(np.mean(self.ious)) if self.ious else 0.0,
            "mean_corner_error": float(np.mean(self.corner_errors)) if self.corner_errors else 1.0,
            "receipts": float(len(self.ious)),
            "missed": float(self.missed),
            "empties": float(self.empties),
            "false_quads": float(self.false_quads),
        }
