"""Fast single-line crops for the recognizer: one rendered, aged, photographed text line."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.synth.content import random_line_text
from models.synth.fonts import load_font
from models.synth.paper import apply_paper
from models.synth.render import _vertical_extent, pick_font
from models.synth.scene import camera
from models.training.charset import CHARSET, Charset

_CHARSET = Charset(CHARSET)


def to_height(gray: np.ndarray, height: int) -> np.ndarray:
    """Scale a grey crop to a fixed height, keeping its aspect ratio (at least `height` wide)."""
    h, w = gray.shape[:2]
    width = max(height, round(w * height / max(h, 1)))
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(gray, (width, height), interpolation=interp)


#: Share of lines printed by a dot-matrix (impact) printer: many shop tills in SROIE are, and
#: their faded dots were the recognizer's worst lines (big header fonts read as 'HARUWAKE').
DOT_MATRIX_SHARE = 0.15


#: Share of lines printed letter-spaced, and of lines seen at low resolution.
TRACKED_SHARE = 0.1
LOW_RES_SHARE = 0.2


def dot_matrix(ink: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    """Ink in [0, 1] re-printed as round dots on a grid (an impact printer's needles): each
    `pitch`-pixel cell with enough ink in it becomes one dot, so thin strokes keep their dots."""
    pitch = max(2, round(size / rng.uniform(7.0, 10.0)))
    radius = pitch * rng.uniform(0.35, 0.5)
    yy, xx = np.mgrid[0:pitch, 0:pitch] + 0.5 - pitch / 2
    dot = np.clip(radius + 0.5 - np.hypot(yy, xx), 0.0, 1.0).astype(np.float32)
    rows, cols = ink.shape[0] // pitch, ink.shape[1] // pitch
    cells = ink[: rows * pitch, : cols * pitch].reshape(rows, pitch, cols, pitch)
    inked = (cells.mean(axis=(1, 3)) > rng.uniform(0.2, 0.35)).astype(np.float32)
    out = np.zeros_like(ink)
    out[: rows * pitch, : cols * pitch] = np.kron(inked, dot)
    return out


def _print(ink: np.ndarray, thermal: bool, size: int, rng: random.Random) -> np.ndarray:
    """How the printer lays the ink down: a thermal head's hard edges, an impact printer's
    dots, or the font as drawn."""
    if thermal and rng.random() < 0.25:
        return (ink > rng.uniform(0.35, 0.6)).astype(np.float32)
    if rng.random() < DOT_MATRIX_SHARE:
        return dot_matrix(ink, size, rng)
    return ink


def _draw(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont,
    *,
    track: float,
    stroke: int,
) -> None:
    """Text on its baseline from `at`, each character `track` pixels further apart."""
    x, baseline = at
    for piece in text if track else [text]:
        draw.text(
            (x, baseline),
            piece,
            font=font,
            fill=255,
            anchor="ls",
            stroke_width=stroke,
            stroke_fill=255,
        )
        x += font.getlength(piece) + track


def generate_line(seed: int, height: int = 32, text: str | None = None) -> tuple[np.ndarray, str]:
    """A grey uint8 crop of one text line, `height` pixels high, and its text (in the charset)."""
    rng, np_rng = random.Random(seed * 7919 + 3), np.random.default_rng([seed, 3])
    if text is None:
        text = ""
        while not text:
            text = _CHARSET.normalize(random_line_text(rng, CHARSET))
    face = pick_font(rng, [text], thermal_bias=0.5)
    size = rng.choice((16, 18, 20, 22, 24, 28, 32)) if face.bitmap else rng.randint(18, 44)
    font = load_font(face.path, size)
    up, down = _vertical_extent(font)
    # letter-spaced headers ('A I K  H U A T'): the recognizer must still not see spaces
    track = rng.uniform(0.08, 0.45) * size if rng.random() < TRACKED_SHARE else 0.0
    length = font.getlength(text) + track * (len(text) - 1)
    pad_l, pad_r = rng.uniform(0, 0.6) * size, rng.uniform(0, 0.6) * size
    pad_t, pad_b = rng.uniform(-0.05, 0.35) * size, rng.uniform(-0.05, 0.35) * size
    w = int(length + pad_l + pad_r + 4) + 1
    h = int(down - up + pad_t + pad_b + 4) + 1
    img = Image.new("L", (w + 2 * size, h + 2 * size), 0)  # margin for rotation, cut later
    draw = ImageDraw.Draw(img)
    baseline = size + pad_t + 2 - up
    stroke = 1 if (rng.random() < 0.15 and not face.bitmap and size >= 24) else 0
    _draw(draw, (size + pad_l + 2, baseline), text, font, track=track, stroke=stroke)
    if rng.random() < 0.3:  # the neighbouring rows peek in
        for dy in (-1, 1):
            if rng.random() < 0.5:
                other = random_line_text(rng, CHARSET)[: max(1, len(text))]
                gap = (down - up) * rng.uniform(1.15, 1.5)
                draw.text(
                    (size + rng.uniform(0, w / 2), baseline + dy * gap),
                    other,
                    font=font,
                    fill=255,
                    anchor="ls",
                )
    ink = _print(np.asarray(img, np.float32) / 255.0, face.thermal, size, rng)
    angle = rng.gauss(0, 1.2)
    shear = rng.gauss(0, 0.08)
    cx, cy = ink.shape[1] / 2, ink.shape[0] / 2
    mat = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    mat[0, 1] += shear
    mat[0, 2] -= shear * cy
    ink = np.asarray(cv2.warpAffine(ink, mat, (ink.shape[1], ink.shape[0]), flags=cv2.INTER_LINEAR))
    ink = ink[size : size + h, size : size + w]
    paper = apply_paper(ink, rng, np_rng)
    if rng.random() < 0.15 and min(pad_l, pad_r) >= 3:  # the crop reaches past the paper's edge
        colour = np.array([rng.random() for _ in range(3)], np.float32)
        if rng.random() < 0.5:
            paper[:, : rng.randint(1, int(pad_l))] = colour
        else:
            paper[:, w - rng.randint(1, int(pad_r)) :] = colour
    photo = camera(paper, rng, np_rng)
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    if rng.random() < 0.1:
        gray = 255 - gray  # white on black (a display, a negative print)
    stretch = rng.uniform(0.8, 1.25)
    gray = cv2.resize(gray, (max(1, round(gray.shape[1] * stretch)), gray.shape[0]))
    if rng.random() < LOW_RES_SHARE:
        gray = low_resolution(gray, rng)
    return to_height(gray, height), text


def low_resolution(gray: np.ndarray, rng: random.Random) -> np.ndarray:
    """The crop as a low-resolution scan or a distant camera sees it: 11 to 16 pixels high (an
    'I' one pixel wide), to be scaled back up to the recognizer's height. SROIE's small header
    faces lose their I's this way ('UNHAKKA NTERNATONAL')."""
    target = rng.randint(11, 16)
    h, w = gray.shape[:2]
    if h <= target:
        return gray
    return cv2.resize(gray, (max(1, round(w * target / h)), target), interpolation=cv2.INTER_AREA)


def line_width_for(text: str, height: int) -> int:
    """A rough upper bound of a line crop's width for a text (for bucketing batches)."""
    return math.ceil(len(text) * height * 0.9 + height)
