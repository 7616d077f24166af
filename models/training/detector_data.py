"""Text-line detector training data (no TensorFlow): pages with line boxes, scaled, cut, labelled.

Pages are SROIE train scans (their box files' quads, as axis-aligned boxes) and flat synthetic
receipts from `models.synth.generate_receipt` (the paper and its `paper_box` line boxes), so the
detector sees what a rectified photo looks like. Each example scales a page as the engine does
(`models.litert.textmap.page_scale`, with the width jittered), cuts a random window of `crop`
pixels (white past the page), and labels it with the cores of its lines (`core_target`) and
the cross-entropy's per-pixel weights (`loss_weights`; all 1 unless a run asks otherwise).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.litert.textmap import core_of, core_target, page_scale
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


def loss_weights(
    shape: tuple[int, int],
    boxes: list[Box],
    *,
    short_weight: float = 1.0,
    gap_weight: float = 1.0,
    short_aspect: float = 1.5,
    gap_heights: float = 3.0,
) -> np.ndarray:
    """Per-pixel weights [H, W] of the cross-entropy (boxes in the map's pixels): 1, except

    - `short_weight` on the cores of boxes narrower than `short_aspect` heights: SROIE's lone
      quantities, tax codes and colons are 7 % of its train boxes but 0.4 % of their core
      pixels, and the shipped detector finds few of them;
    - `gap_weight` on the background between each box and its nearest right-hand neighbour on
      its row (closer than `gap_heights` heights), over the height the two cores share: where
      the detector joins segments that the labels keep apart.

    The target itself is unchanged, so boxes still grow back as `calibrate_growth` measures.
    """
    weights = np.ones(shape, np.float32)
    if not boxes or (short_weight == 1.0 and gap_weight == 1.0):
        return weights
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cores = np.asarray([core_of(box) for box in boxes])
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    if gap_weight != 1.0:
        cy = (b[:, 1] + b[:, 3]) / 2
        # j is i's neighbour on the right: each centre inside the other's rows, j starts past
        # i's end, and the gap is under gap_heights mean heights
        same_row = (b[None, :, 1] <= cy[:, None]) & (cy[:, None] <= b[None, :, 3])
        same_row &= same_row.T
        gap = b[None, :, 0] - b[:, None, 2]
        near = same_row & (gap > 0) & (gap < gap_heights * (h[:, None] + h[None, :]) / 2)
        gap = np.where(near, gap, np.inf)
        for i in np.flatnonzero(np.isfinite(gap).any(axis=1)):
            j = int(np.argmin(gap[i]))
            y0 = round(max(cores[i, 1], cores[j, 1]))
            y1 = round(min(cores[i, 3], cores[j, 3]))
            x0, x1 = round(b[i, 2]), round(b[j, 0])
            y0, x0 = max(0, y0), max(0, x0)
            y1, x1 = min(shape[0], y1), min(shape[1], x1)
            if y1 > y0 and x1 > x0:
                weights[y0:y1, x0:x1] = gap_weight
    if short_weight != 1.0:
        for k in np.flatnonzero(b[:, 2] - b[:, 0] < short_aspect * h):
            x0, y0, x1, y1 = cores[k]
            ix0, iy0 = max(0, round(x0)), max(0, round(y0))
            ix1 = min(shape[1], max(ix0 + 1, round(x1)))
            iy1 = min(shape[0], max(iy0 + 1, round(y1)))
            weights[iy0:iy1, ix0:ix1] = short_weight
    return weights


def example(
    page: Page,
    rng: random.Random,
    *,
    target_width: int = 384,
    max_side: int = 1280,
    crop: int = 256,
    jitter: tuple[float, float] = (0.8, 1.25),
    short_weight: float = 1.0,
    gap_weight: float = 1.0,
    fade: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A training window: image [crop, crop] float in [0, 1], its core target {0, 1} and its
    cross-entropy weights (`loss_weights`; all 1 with the default weights). A share `fade` of
    the windows has its ink faded towards one side (`fade_ink`); the target keeps the text."""
    width = round(target_width * rng.uniform(*jitter))
    img, boxes = scaled(page, width, round(max_side * width / target_width))
    target = core_target(img.shape[:2], boxes)
    weight = loss_weights(img.shape[:2], boxes, short_weight=short_weight, gap_weight=gap_weight)
    h, w = img.shape
    top = rng.randint(min(0, h - crop), max(0, h - crop))
    left = rng.randint(min(0, w - crop), max(0, w - crop))
    out_img = np.ones((crop, crop), np.float32)
    out_t = np.zeros((crop, crop), np.uint8)
    out_w = np.ones((crop, crop), np.float32)
    sy0, sx0 = max(0, top), max(0, left)
    sy1, sx1 = min(h, top + crop), min(w, left + crop)
    out_img[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = img[sy0:sy1, sx0:sx1]
    out_t[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = target[sy0:sy1, sx0:sx1]
    out_w[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = weight[sy0:sy1, sx0:sx1]
    if rng.random() < fade:
        out_img = fade_ink(out_img, rng)
    return _augment(out_img, rng), out_t, out_w


def fade_ink(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """The ink of a window [0, 1] (dark on light) faded along a random direction down to 15-50 %
    of its darkness: a thermal head's weak end, a receipt left in the sun. SROIE has such
    headers ('Gerbang', 'ONE' of 'ONE ONE THREE' nearly gone) whose faded words the detector
    left out of the line, so the recognizer never saw them."""
    h, w = img.shape
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    start, span = rng.uniform(-0.4, 0.2) * max(h, w), rng.uniform(0.1, 0.6) * max(h, w)
    low = rng.uniform(0.15, 0.5)
    keep = low + (1 - low) * np.clip((along - start) / span, 0.0, 1.0)
    background = float(np.percentile(img, 90))
    return np.asarray(background - (background - img) * keep, np.float32)


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
    synth_every: int = 1,
    crop: int = 256,
    target_width: int = 384,
    forbidden_ids: frozenset[str] = frozenset(),
    short_weight: float = 1.0,
    gap_weight: float = 1.0,
    fade: float = 0.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (images [B, crop, crop, 1], targets [B, crop, crop, 2]) by seed: a target's
    channels are the core map {0, 1} and the cross-entropy's weights (`loss_weights`).

    Synthetic pages are slow to make (0.3 s each, longer than a training step of the shipped
    network), so a pool of `synth_pool` is kept and one page of it is replaced every
    `synth_every` batches (the pool is filled first). Raises ValueError if a forbidden (val)
    page is given.
    """
    leaked = {p.id for p in real if p.id in forbidden_ids}
    if leaked:
        raise ValueError(
            f"validation receipts in the detector's training data: {sorted(leaked)[:5]}"
        )
    rng = random.Random(seed)
    next_seed = seed * 1_000_003
    pool: list[Page] = []
    for count in itertools.count():
        if synth_share > 0 and (len(pool) < synth_pool or count % max(1, synth_every) == 0):
            next_seed += 1
            fresh = synth_page(next_seed)
            if len(pool) < synth_pool:
                pool.append(fresh)
            else:
                pool[rng.randrange(synth_pool)] = fresh
        images = np.empty((batch_size, crop, crop, 1), np.float32)
        targets = np.empty((batch_size, crop, crop, 2), np.float32)
        for k in range(batch_size):
            use_synth = pool and (not real or rng.random() < synth_share)
            page = rng.choice(pool) if use_synth else rng.choice(real)
            img, t, w = example(
                page,
                rng,
                target_width=target_width,
                crop=crop,
                short_weight=short_weight,
                gap_weight=gap_weight,
                fade=fade,
            )
            images[k, :, :, 0] = img
            targets[k, :, :, 0] = t
            targets[k, :, :, 1] = w
        yield images, targets
