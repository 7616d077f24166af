"""Generated test images: a receipt rendered with Pillow, countertops, and a receipt photographed
on a countertop in perspective (with the true corners), all reproducible from a seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]

RECEIPT_LINES = [
    "CORNER GROCERY LTD",
    "12 HIGH STREET, SPRINGFIELD",
    "TEL 0123 456789",
    "",
    "DATE 14/03/2024   TIME 10:42",
    "RECEIPT NO 004711",
    "",
    "MILK 1L              1.20",
    "BREAD WHOLEMEAL      2.35",
    "APPLES 1KG           3.10",
    "COFFEE BEANS         7.99",
    "",
    "SUBTOTAL            14.64",
    "VAT 20%              2.44",
    "TOTAL               14.64",
    "CARD                14.64",
    "",
    "THANK YOU FOR SHOPPING",
]

COUNTERTOPS = ("wood", "granite", "tiles", "gradient", "dark", "speckled")


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for folder in FONT_DIRS:
        for name in ("DejaVuSansMono.ttf", "LiberationMono-Regular.ttf"):
            if (folder / name).exists():
                return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def render_receipt(
    lines: list[str] = RECEIPT_LINES, *, width: int = 480, text_px: int = 20
) -> np.ndarray:
    """A clean receipt: dark monospaced text on off-white paper, BGR."""
    f = font(text_px)
    line_h = int(text_px * 1.5)
    margin = text_px
    height = 2 * margin + line_h * len(lines)
    paper = Image.new("RGB", (width, height), (246, 244, 238))
    draw = ImageDraw.Draw(paper)
    for i, text in enumerate(lines):
        draw.text((margin, margin + i * line_h), text, fill=(25, 25, 30), font=f)
    return cv2.cvtColor(np.asarray(paper), cv2.COLOR_RGB2BGR)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.random((max(2, h // cell), max(2, w // cell)), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def countertop(kind: str, size: tuple[int, int] = (960, 1280), seed: int = 0) -> np.ndarray:
    """An empty countertop of `size` (height, width), BGR uint8."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        warp = _smooth_noise(rng, h, w, 200) * 60
        rings = 0.5 + 0.5 * np.sin((yy + 0.2 * xx + warp) / rng.uniform(5, 12))
        t = 0.6 * rings + 0.4 * _smooth_noise(rng, h, w, 4)
        dark, light = np.array([30, 60, 110]), np.array([70, 120, 180])
        img = dark + (light - dark) * t[..., None]
    elif kind == "granite":
        t = 0.5 * _smooth_noise(rng, h, w, 40) + 0.5 * rng.random((h, w), dtype=np.float32)
        img = np.repeat((60 + 90 * t)[..., None], 3, axis=2)
    elif kind == "tiles":
        base = np.full((h, w, 3), (170, 190, 205), np.float32)
        grout = ((xx % 160) < 6) | ((yy % 160) < 6)
        base[grout] = (90, 95, 100)
        img = base * (0.9 + 0.2 * _smooth_noise(rng, h, w, 60))[..., None]
    elif kind == "gradient":
        t = xx / w * 0.6 + yy / h * 0.4
        img = np.repeat((110 + 70 * t)[..., None], 3, axis=2)
    elif kind == "dark":
        img = np.repeat((35 + 25 * _smooth_noise(rng, h, w, 30))[..., None], 3, axis=2)
    elif kind == "speckled":  # pale quartz with dark flecks: light, colourless, "inky"
        img = (
            np.full((h, w, 3), 180.0, np.float32)
            * (0.95 + 0.1 * _smooth_noise(rng, h, w, 80))[..., None]
        )
        flecks = rng.random((h, w)) < 0.004
        flecks = cv2.dilate(flecks.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        img[flecks] = (50, 50, 55)
    else:
        raise ValueError(f"unknown countertop {kind!r}; use one of {COUNTERTOPS}")
    noisy: np.ndarray = np.asarray(img, np.float32) + rng.normal(0, 3, (h, w, 1))
    out: np.ndarray = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Photo:
    image: np.ndarray
    #: The receipt's true corners in the photo, clockwise from its top-left.
    quad: np.ndarray
    receipt: np.ndarray


def photograph(
    receipt: np.ndarray,
    background: np.ndarray,
    seed: int = 0,
    *,
    fill: float = 0.7,
    max_tilt: float = 0.08,
    max_rotation: float = 12.0,
) -> Photo:
    """The receipt laid on the countertop and photographed from slightly off-axis."""
    rng = np.random.default_rng(seed)
    bh, bw = background.shape[:2]
    rh, rw = receipt.shape[:2]
    scale = fill * bh / rh
    angle = np.radians(rng.uniform(-max_rotation, max_rotation))
    centre = np.array(
        [bw / 2 + rng.uniform(-0.1, 0.1) * bw, bh / 2 + rng.uniform(-0.05, 0.05) * bh]
    )
    corners = np.array([[0, 0], [rw, 0], [rw, rh], [0, rh]], np.float32) - [rw / 2, rh / 2]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = (corners * scale) @ rot.T + centre
    quad += rng.uniform(-max_tilt, max_tilt, quad.shape) * rh * scale * 0.5
    # Keep the whole receipt in the frame, 2 % from its edges.
    low, high = np.array([0.02 * bw, 0.02 * bh]), np.array([0.98 * bw, 0.98 * bh])
    shrink = min(
        1.0, *((high - centre) / (quad.max(0) - centre)), *((centre - low) / (centre - quad.min(0)))
    )
    quad = ((quad - centre) * shrink + centre).astype(np.float32)
    src = np.array([[0, 0], [rw - 1, 0], [rw - 1, rh - 1], [0, rh - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(receipt, m, (bw, bh), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((rh, rw), 255, np.uint8), m, (bw, bh)) / 255.0
    photo = background.astype(np.float32) * (1 - mask[..., None]) + warped * mask[..., None]
    # Light falls off across the frame, and the sensor adds noise.
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    light = 1.0 - 0.15 * ((xx / bw - rng.uniform(0, 1)) ** 2 + (yy / bh - rng.uniform(0, 1)) ** 2)
    photo = photo * light[..., None] + rng.normal(0, 2.5, photo.shape)
    photo = cv2.GaussianBlur(np.clip(photo, 0, 255).astype(np.uint8), (3, 3), 0)
    return Photo(image=photo, quad=quad, receipt=receipt)
