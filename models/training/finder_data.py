"""Receipt finder training data (no TensorFlow): countertop photos, their corners, empty ones.

Each example is one synthetic frame (`models.synth.generate_receipt` or, with probability
`empty_share`, `generate_empty`), rendered at `render_size` (smaller than a camera frame: the
finder sees it at 192x256 anyway, and small frames render five times faster), resized to the
finder's input, with Gaussian corner maps (`models.litert.corners.corner_heatmaps`) and a
presence target of 1 or 0. Seeds make every example reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np

from models.litert.corners import INPUT_SIZE, corner_heatmaps, map_size, prepare_frame
from models.synth import generate_empty, generate_receipt

RENDER_SIZE = (384, 512)


def example(
    seed: int, empty: bool, render_size: tuple[int, int] = RENDER_SIZE
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """(input [H, W, 3], heat maps [h, w, 4], presence, corners (4, 2) in frame pixels or None)."""
    sample = generate_empty(seed, render_size) if empty else generate_receipt(seed, render_size)
    corners = sample.label.corners
    image = prepare_frame(sample.image, INPUT_SIZE)
    maps = corner_heatmaps(corners, render_size, INPUT_SIZE)
    quad = None if corners is None else np.asarray(corners, np.float32)
    return image, maps, float(corners is not None), quad


def batches(
    *, batch_size: int, seed: int, empty_share: float = 0.2
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (images [B, H, W, 3], maps [B, h, w, 4], presence [B, 1]) from fresh seeds."""
    rng = random.Random(seed)
    counter = seed * 1_000_003
    mw, mh = map_size(INPUT_SIZE)
    while True:
        images = np.empty((batch_size, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.float32)
        maps = np.empty((batch_size, mh, mw, 4), np.float32)
        presence = np.empty((batch_size, 1), np.float32)
        for k in range(batch_size):
            counter += 1
            images[k], maps[k], presence[k, 0], _ = example(counter, rng.random() < empty_share)
        yield images, maps, presence
