"""Receipt finder training data (no TensorFlow): countertop photos, their corners, empty ones.

Each example is one synthetic frame (`models.synth.generate_receipt` or, with probability
`empty_share`, `generate_empty`), rendered at `render_size` (smaller than a camera frame: the
finder sees it at 192x256 anyway, and small frames render five times faster), resized to the
finder's input, with its target maps (`models.litert.corners.finder_targets`: Gaussian corner
maps of the main receipt and the paper of every receipt, a second one included) and a presence
target of 1 or 0. Seeds make every example reproducible.

Training reads a *frame bank* rather than rendering every step: rendering costs about 60 ms a
frame and a training step of 16 frames about 65 ms on one CPU core, so fresh frames would leave
the network waiting 15 times longer than it computes. The bank (`build_bank`: npz shards of
frames at the finder's input size, uint8, with their corners, written by a process pool and
resumable shard by shard) is rendered once per run; every draw from it is then re-posed and
re-lit (`augment`: a random similarity transform, mirror, half turn, colour gain, gamma, blur
and noise), so an epoch of 300 steps costs seconds of data, not minutes.

Corners are kept in *screen* order (`models.document.geometry.order_corners`: clockwise from
the one nearest the frame's top-left), the order the runtime reports, so a mirrored or
upside-down receipt has the same targets as an upright one and the network never has to
guess which way up the text is.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.document.geometry import order_corners
from models.litert.corners import (
    INPUT_SIZE,
    MAP_CHANNELS,
    finder_targets,
    map_size,
    prepare_frame,
)
from models.synth import generate_empty, generate_receipt, generate_scan

logger = logging.getLogger(__name__)

RENDER_SIZE = (384, 512)
#: Other receipts kept per bank frame (the generator puts at most one beside the main one).
MAX_OTHERS = 2


def example(
    seed: int, empty: bool, render_size: tuple[int, int] = RENDER_SIZE
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """(input [H, W, 3], target maps [h, w, MAP_CHANNELS], presence, corners (4, 2) in frame
    pixels, screen order, or None)."""
    sample = generate_empty(seed, render_size) if empty else generate_receipt(seed, render_size)
    quad = (
        None
        if sample.label.corners is None
        else order_corners(np.asarray(sample.label.corners, np.float32))
    )
    image = prepare_frame(sample.image, INPUT_SIZE)
    others = [list(q) for q in sample.label.others]
    maps = finder_targets(None if quad is None else quad.tolist(), others, render_size, INPUT_SIZE)
    return image, maps, float(quad is not None), quad


# --- the frame bank -------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameBank:
    """Frames [N, H, W, 3] uint8 at the finder's input size, their corners [N, 4, 2] float32
    in input pixels, screen order (NaN for an empty countertop), and the corners of other
    receipts in them [N, MAX_OTHERS, 4, 2] (NaN where none)."""

    frames: np.ndarray
    corners: np.ndarray
    others: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __add__(self, other: FrameBank) -> FrameBank:
        return FrameBank(
            np.concatenate([self.frames, other.frames]),
            np.concatenate([self.corners, other.corners]),
            np.concatenate([self.others, other.others]),
        )


def _render_shard(args: tuple[Path, int, int, float, bool]) -> Path:
    """Render one shard of the bank: `count` frames from seeds `first`, ..., saved as npz:
    countertop photos and empty countertops, or flatbed scans (`scans`)."""
    path, first, count, empty_share, scans = args
    rng = random.Random(first)
    frames = np.empty((count, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.uint8)
    corners = np.full((count, 4, 2), np.nan, np.float32)
    others = np.full((count, MAX_OTHERS, 4, 2), np.nan, np.float32)
    scale = np.array([INPUT_SIZE[0] / RENDER_SIZE[0], INPUT_SIZE[1] / RENDER_SIZE[1]], np.float32)
    for k in range(count):
        empty = rng.random() < empty_share
        make = generate_scan if scans else generate_empty if empty else generate_receipt
        sample = make(first + k, RENDER_SIZE)
        frames[k] = cv2.resize(sample.image, INPUT_SIZE, interpolation=cv2.INTER_AREA)
        if sample.label.corners is not None:
            corners[k] = order_corners(np.asarray(sample.label.corners, np.float32)) * scale
        for j, quad in enumerate(sample.label.others[:MAX_OTHERS]):
            others[k, j] = np.asarray(quad, np.float32) * scale
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, frames=frames, corners=corners, others=others)
    tmp.replace(path)
    return path


def build_bank(
    folder: Path,
    count: int,
    *,
    seed: int,
    empty_share: float = 0.2,
    scans: bool = False,
    shard: int = 500,
    workers: int = 2,
) -> FrameBank:
    """The bank of `count` frames in `folder`, rendering the shards it doesn't have yet:
    countertop photos (`empty_share` of them empty), or flatbed scans (`scans`).

    Shard i holds the frames of seeds seed + i * shard, ...; a shard is written to a temporary
    name and renamed when whole, so a run stopped while rendering resumes where it was.
    """
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(math.ceil(count / shard)):
        path = folder / f"shard-{i:04d}.npz"
        if not path.exists():
            jobs.append((path, seed + i * shard, min(shard, count - i * shard), empty_share, scans))
    if jobs:
        logger.info("rendering %d finder bank shards into %s", len(jobs), folder)
        with ProcessPoolExecutor(max(1, workers)) as pool:
            for done in pool.map(_render_shard, jobs):
                logger.info("finder bank: %s written", done.name)
    parts = [np.load(folder / f"shard-{i:04d}.npz") for i in range(math.ceil(count / shard))]
    return FrameBank(
        np.concatenate([p["frames"] for p in parts])[:count],
        np.concatenate([p["corners"] for p in parts])[:count],
        np.concatenate([p["others"] for p in parts])[:count],
    )


def augment(
    frame: np.ndarray, corners: np.ndarray, others: np.ndarray, rng: random.Random
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A re-posed, re-lit copy of a bank frame: (float32 [H, W, 3] in [0, 1], corners in
    screen order, NaN kept for an empty frame, the other receipts' corners moved alike).

    A similarity transform (rotation up to 12 degrees, scale 0.85 to 1.1, shift up to 6 % of
    the frame; the border continues the countertop by reflection) that keeps every corner
    inside the frame (else the frame is only mirrored), a mirror half the time, a half turn a
    tenth of the time; then per-channel gain, gamma, a blur a quarter of the time and sensor
    noise.
    """
    h, w = frame.shape[:2]
    has = not np.isnan(corners).any()
    pts, more = corners.copy(), others.copy()
    out = frame
    for _ in range(4):
        angle = rng.uniform(-12, 12)
        scale = rng.uniform(0.85, 1.1)
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        mat[:, 2] += (rng.uniform(-0.06, 0.06) * w, rng.uniform(-0.06, 0.06) * h)
        moved = pts @ mat[:, :2].T + mat[:, 2] if has else pts
        if not has or (
            (moved >= 0).all() and (moved[:, 0] <= w - 1).all() and (moved[:, 1] <= h - 1).all()
        ):
            out = cv2.warpAffine(frame, mat, (w, h), borderMode=cv2.BORDER_REFLECT_101)
            pts = moved
            more = more @ mat[:, :2].T + mat[:, 2]
            break
    if rng.random() < 0.5:
        out = out[:, ::-1]
        pts, more = (q * [-1, 1] + [w - 1, 0] for q in (pts, more))
    if rng.random() < 0.1:
        out = out[::-1, ::-1]
        pts, more = ([w - 1, h - 1] - q for q in (pts, more))
    if has:
        pts = order_corners(pts)
    img = out.astype(np.float32) / 255.0
    img = img * np.asarray([rng.uniform(0.8, 1.2) for _ in range(3)], np.float32)
    img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 0.03), img.shape)
    img = np.clip(img + noise, 0, 1).astype(np.float32)
    return img, np.asarray(pts, np.float32), np.asarray(more, np.float32)


def bank_batches(
    bank: FrameBank, *, batch_size: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (images, maps, presence) batches of augmented bank frames, as `batches`."""
    rng = random.Random(seed)
    mw, mh = map_size(INPUT_SIZE)
    while True:
        images = np.empty((batch_size, INPUT_SIZE[1], INPUT_SIZE[0], 3), np.float32)
        maps = np.empty((batch_size, mh, mw, MAP_CHANNELS), np.float32)
        presence = np.empty((batch_size, 1), np.float32)
        for k in range(batch_size):
            i = rng.randrange(len(bank))
            images[k], pts, more = augment(bank.frames[i], bank.corners[i], bank.others[i], rng)
            has = not np.isnan(pts).any()
            others = [q.tolist() for q in more if np.isfinite(q).all()]
            maps[k] = finder_targets(pts.tolist() if has else None, others, INPUT_SIZE, INPUT_SIZE)
            presence[k, 0] = float(has)
        yield images, maps, presence
