"""Recognizer training data (no TensorFlow): SROIE train line crops mixed with synthetic lines."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.document.rectify import LINE_PAD, crop_quad
from models.synth.lines import LOW_RES_SHARE, generate_line, low_resolution, to_height
from models.training.charset import Charset

logger = logging.getLogger(__name__)

SROIE_ROOT = Path("/work/shared/datasets/sroie-train")
#: Extra margin kept around the stored SROIE crops of a run with box jitter, so that each
#: use can cut the line with other edges (`cut_real`).
JITTER_ROOM = 0.25
#: Time steps per pixel of width after the recognizer's pooling.
WIDTH_STRIDE = 4
MAX_WIDTH = 1024


@dataclass(frozen=True)
class BoxLine:
    """One line of a SROIE box file: its receipt id, quad and transcript."""

    receipt_id: str
    quad: tuple[tuple[float, float], ...]
    text: str


def read_box_file(path: Path) -> list[BoxLine]:
    """Parse `x1,y1,...,x4,y4,text` rows (text may contain commas: split on the first eight)."""
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = raw.strip().split(",", 8)
        if len(parts) < 9 or not parts[8].strip():
            continue
        try:
            nums = [float(v) for v in parts[:8]]
        except ValueError:
            continue
        quad = tuple((nums[i], nums[i + 1]) for i in range(0, 8, 2))
        out.append(BoxLine(path.stem, quad, parts[8].strip()))
    return out


def crop_line(
    gray: np.ndarray, quad: tuple[tuple[float, float], ...], height: int, pad: float = LINE_PAD
) -> np.ndarray:
    """Rectify a (possibly slanted) quad to an upright crop `height` high, with a little margin."""
    return to_height(crop_quad(gray, quad, pad), height)


def sroie_crops(
    ids: list[str], charset: Charset, height: int, root: Path = SROIE_ROOT, room: float = 0.0
) -> list[tuple[np.ndarray, str, str]]:
    """(crop, text, receipt id) for every usable line of the given receipts.

    `room` > 0 keeps that much more margin (a share of the box's height) on every side, at the
    same pixel scale as a plain crop, for `cut_real` to cut from.
    """
    pad = LINE_PAD + room
    stored = round(height * (1 + 2 * pad) / (1 + 2 * LINE_PAD))
    out = []
    for rid in ids:
        box, img = root / "box" / f"{rid}.txt", root / "img" / f"{rid}.jpg"
        gray = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
        if gray is None or not box.exists():
            logger.warning("SROIE receipt %s has no readable image or box file; skipped", rid)
            continue
        for line in read_box_file(box):
            text = charset.normalize(line.text)
            if text:
                out.append((crop_line(gray, line.quad, stored, pad), text, rid))
    return out


def fits(image: np.ndarray, text: str) -> bool:
    """Whether CTC can align the text to the crop (enough time steps, not too wide)."""
    steps = image.shape[1] // WIDTH_STRIDE
    repeats = sum(1 for a, b in itertools.pairwise(text) if a == b)
    return len(text) > 0 and len(text) + repeats <= steps and image.shape[1] <= MAX_WIDTH


def crop_room(box_jitter: float) -> float:
    """The extra margin the stored crops of a run need: `JITTER_ROOM` with box jitter, else 0."""
    return JITTER_ROOM if box_jitter > 0 else 0.0


def cut_real(
    img: np.ndarray, room: float, height: int, rng: random.Random, jitter: float
) -> np.ndarray:
    """A stored crop with `room` of extra margin cut to a line crop `height` high: with
    probability `jitter` along edges moved as the detector's boxes move against the true ones,
    else with the plain margin.

    On the 30 dev receipts the detector's boxes (matched to true ones) are 0.87 to 1.2 times as
    high (10th to 90th percentile), their centres 0.05 heights off and their ends 0.1 heights
    off either way, so each edge's margin is drawn from 0.02 to 0.22 heights above and below
    and 0 to 0.25 heights at the ends (the plain margin, `LINE_PAD`, is 0.1 everywhere).
    """
    if room <= 0:
        return img
    h, w = img.shape[:2]
    box_h = h / (1 + 2 * (LINE_PAD + room))
    m = (LINE_PAD + room) * box_h
    if rng.random() < jitter:
        top, bottom = rng.uniform(0.02, 0.22), rng.uniform(0.02, 0.22)
        left, right = rng.uniform(0.0, 0.25), rng.uniform(0.0, 0.25)
    else:
        top = bottom = left = right = LINE_PAD
    y0, y1 = m - top * box_h, h - m + bottom * box_h
    x0, x1 = m - left * box_h, w - m + right * box_h
    scale = height / (y1 - y0)
    width = max(height, round((x1 - x0) * scale))
    shift = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    out = cv2.warpAffine(
        img, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out, np.uint8)


def augment_real(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Light jitter of a real crop: contrast, blur, noise, horizontal stretch, and now and then
    a lower resolution (`low_resolution`, scaled back to the crop's height)."""
    out: np.ndarray = img.astype(np.float32)
    if rng.random() < LOW_RES_SHARE / 2:
        h, w = img.shape[:2]
        small = low_resolution(img, rng)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    out = (out - 128) * rng.uniform(0.7, 1.2) + 128 + rng.uniform(-25, 25)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    out += np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 6), out.shape)
    stretch = rng.uniform(0.85, 1.15)
    out = cv2.resize(out, (max(8, round(out.shape[1] * stretch)), out.shape[0]))
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class Batch:
    """Images [B, H, W, 1] float in [0, 1] (padded right), labels [B, L] (0-padded), lengths."""

    images: np.ndarray
    labels: np.ndarray
    label_lengths: np.ndarray
    texts: list[str]


def make_batch(items: list[tuple[np.ndarray, str]], charset: Charset) -> Batch:
    """Pad a list of (grey crop, text) to one batch; padding repeats each crop's last column."""
    height = items[0][0].shape[0]
    width = max(i.shape[1] for i, _ in items)
    width = -(-width // WIDTH_STRIDE) * WIDTH_STRIDE
    images = np.zeros((len(items), height, width, 1), np.float32)
    longest = max(len(t) for _, t in items)
    labels = np.zeros((len(items), longest), np.int32)
    lengths = np.zeros((len(items),), np.int32)
    for k, (img, text) in enumerate(items):
        padded = cv2.copyMakeBorder(img, 0, 0, 0, width - img.shape[1], cv2.BORDER_REPLICATE)
        images[k, :, :, 0] = padded.astype(np.float32) / 255.0
        ids = charset.encode(text)
        labels[k, : len(ids)] = ids
        lengths[k] = len(ids)
    return Batch(images, labels, lengths, [t for _, t in items])


def training_batches(
    real: list[tuple[np.ndarray, str, str]],
    charset: Charset,
    batch_size: int,
    *,
    seed: int,
    height: int,
    real_share: float = 0.35,
    forbidden_ids: frozenset[str] = frozenset(),
    box_jitter: float = 0.0,
) -> Iterator[Batch]:
    """Endless batches of real train crops (jittered) and fresh synthetic lines, by seed.

    With `box_jitter` > 0 the real crops must be stored with `crop_room(box_jitter)`
    (`sroie_crops`); `cut_real` cuts them, `box_jitter` of them along moved edges.

    Raises ValueError if a crop of a forbidden (validation) receipt is handed in.
    """
    leaked = {rid for _, _, rid in real if rid in forbidden_ids}
    if leaked:
        raise ValueError(f"validation receipts in the training data: {sorted(leaked)[:5]}")
    room = crop_room(box_jitter)
    rng = random.Random(seed)
    counter = seed * 1_000_003
    pool_batches = 4  # draw four batches' worth, group by width so batches pad little
    while True:
        items: list[tuple[np.ndarray, str]] = []
        while len(items) < batch_size * pool_batches:
            if real and rng.random() < real_share:
                img, text, _ = rng.choice(real)
                img = augment_real(cut_real(img, room, height, rng, box_jitter), rng)
            else:
                counter += 1
                img, text = generate_line(counter, height)
            if fits(img, text):
                items.append((img, text))
        items.sort(key=lambda it: it[0].shape[1])
        groups = [items[k * batch_size : (k + 1) * batch_size] for k in range(pool_batches)]
        rng.shuffle(groups)
        for group in groups:
            yield make_batch(group, charset)
