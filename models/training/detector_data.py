"""Text-line detector training data (no TensorFlow): pages with line boxes, scaled, cut, labelled.

Pages are SROIE train scans (their box files' quads, as axis-aligned boxes) and flat synthetic
receipts from `models.synth.generate_receipt` (the paper and its `paper_box` line boxes), so the
detector sees what a rectified photo looks like. Each example scales a page as the engine does
(`models.litert.textmap.page_scale`, with the width jittered), cuts a random window of `crop`
pixels (white past the page), and labels it with the cores of its lines (`core_target`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.litert.textmap import core_target, page_scale
from models.synth import generate_receipt
from models.training.data import SROIE_ROOT, read_box_file

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Page:
    """A grey page and its line boxes (x0, y0, x1, y1) in its pixels."""

    id: str
    gray: np.ndarray
    boxes: list[Box]


def quad_to_box(quad: tuple[tuple[float, float], ...]) -> Box:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return min(xs), min(ys), max(xs), max(ys)


def sroie_pages(ids: list[str], root: Path = SROIE_ROOT) -> list[Page]:
    """The SROIE scans with these ids and their line boxes (unreadable ones skipped, logged)."""
    pages = []
    for rid in ids:
        gray = cv2.imread(str(root / "img" / f"{rid}.jpg"), cv2.IMREAD_GRAYSCALE)
        box = root / "box" / f"{rid}.txt"
        if gray is None or not box.exists():
            logger.warning("SROIE receipt %s has no readable image or box file; skipped", rid)
            continue
        pages.append(Page(rid, gray, [quad_to_box(b.quad) for b in read_box_file(box)]))
    return pages


def synth_page(seed: int) -> Page:
    """The flat paper of synthetic receipt `seed` and its line boxes."""
    sample = generate_receipt(seed)
    assert sample.paper is not None  # a receipt sample always has its paper
    gray = cv2.cvtColor(sample.paper, cv2.COLOR_RGB2GRAY)
    return Page(f"synth-{seed}", gray, [ln.paper_box for ln in sample.label.lines])


def scaled(page: Page, target_width: int, max_side: int) -> tuple[np.ndarray, list[Box]]:
    """The page as the engine scales it (float [0, 1]) and its boxes in the scaled pixels."""
    ps = page_scale(page.gray.shape[1], page.gray.shape[0], target_width, max_side)
    interp = cv2.INTER_AREA if ps.scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(page.gray, (ps.width, ps.height), interpolation=interp)
    boxes = [
        (x0 * ps.scale, y0 * ps.scale, x1 * ps.scale, y1 * ps.scale)
        for x0, y0, x1, y1 in page.boxes
    ]
    return img.astype(np.float32) / 255.0, boxes


def example(
    page: Page,
    rng: random.Random,
    *,
    target_width: int = 384,
    max_side: int = 1280,
    crop: int = 256,
    jitter: tuple[float, float] = (0.8, 1.25),
) -> tuple[np.ndarray, np.ndarray]:
    """A training window: image [crop, crop] float in [0, 1] and its core target {0, 1}."""
    width = round(target_width * rng.uniform(*jitter))
    img, boxes = scaled(page, width, round(max_side * width / target_width))
    target = core_target(img.shape[:2], boxes)
    h, w = img.shape
    top = rng.randint(min(0, h - crop), max(0, h - crop))
    left = rng.randint(min(0, w - crop), max(0, w - crop))
    out_img = np.ones((crop, crop), np.float32)
    out_t = np.zeros((crop, crop), np.uint8)
    sy0, sx0 = max(0, top), max(0, left)
    sy1, sx1 = min(h, top + crop), min(w, left + crop)
    out_img[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = img[sy0:sy1, sx0:sx1]
    out_t[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = target[sy0:sy1, sx0:sx1]
    return _augment(out_img, rng), out_t


def _augment(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Contrast, brightness, blur and noise, as cameras and thermal paper vary."""
    out: np.ndarray = (img - 0.5) * rng.uniform(0.6, 1.2) + 0.5 + rng.uniform(-0.12, 0.12)
    if rng.random() < 0.3:
        out = np.asarray(cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0)))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 0.03), out.shape)
    return np.clip(out + noise, 0, 1).astype(np.float32)


def batches(
    real: list[Page],
    *,
    batch_size: int,
    seed: int,
    synth_share: float = 0.5,
    synth_pool: int = 64,
    crop: int = 256,
    target_width: int = 384,
    forbidden_ids: frozenset[str] = frozenset(),
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (images [B, crop, crop, 1], targets [B, crop, crop, 1]) by seed.

    Synthetic pages are slow to make (a second each), so a pool of `synth_pool` is kept and one
    page of it is replaced per batch. Raises ValueError if a forbidden (val) page is given.
    """
    leaked = {p.id for p in real if p.id in forbidden_ids}
    if leaked:
        raise ValueError(
            f"validation receipts in the detector's training data: {sorted(leaked)[:5]}"
        )
    rng = random.Random(seed)
    next_seed = seed * 1_000_003
    pool: list[Page] = []
    while True:
        if synth_share > 0:
            next_seed += 1
            fresh = synth_page(next_seed)
            if len(pool) < synth_pool:
                pool.append(fresh)
            else:
                pool[rng.randrange(synth_pool)] = fresh
        images = np.empty((batch_size, crop, crop, 1), np.float32)
        targets = np.empty((batch_size, crop, crop, 1), np.float32)
        for k in range(batch_size):
            use_synth = pool and (not real or rng.random() < synth_share)
            page = rng.choice(pool) if use_synth else rng.choice(real)
            img, t = example(page, rng, target_width=target_width, crop=crop)
            images[k, :, :, 0] = img
            targets[k, :, :, 0] = t
        yield images, targets
