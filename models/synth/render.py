"""Draws a receipt's rows onto flat paper, and records each text segment's box."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.synth.content import Content, Row
from models.synth.fonts import FontFace, available_fonts, bitmap_size, load_font, supports


@dataclass(frozen=True)
class PrintedLine:
    """One text segment as printed: its text, role and box (x0, y0, x1, y1) on the flat paper."""

    text: str
    role: str
    row: int
    box: tuple[float, float, float, float]


@dataclass
class Flat:
    """The printed paper before any paper or camera effect: ink coverage in [0, 1]."""

    ink: np.ndarray  # float32, H x W
    lines: list[PrintedLine]
    font: str


def pick_font(rng: random.Random, texts: list[str], thermal_bias: float = 0.6) -> FontFace:
    """A face that draws every character of the texts, preferring till-printer looks."""
    faces = available_fonts()
    want_thermal = rng.random() < thermal_bias
    pool = [f for f in faces if f.thermal == want_thermal] or list(faces)
    rng.shuffle(pool)
    joined = "".join(texts)
    for face in pool + list(faces):
        if supports(face.path, joined):
            return face
    return faces[0]


def _vertical_extent(font: ImageFont.FreeTypeFont) -> tuple[float, float]:
    """Offsets above and below the baseline that a line box covers, the same for every line."""
    top = font.getbbox("HÅdlfb", anchor="ls")[1]
    bottom = font.getbbox("gjpqy", anchor="ls")[3]
    return float(top), float(bottom)


def _barcode(
    draw: ImageDraw.ImageDraw, rng: random.Random, *, x0: int, y0: int, w: int, h: int
) -> None:
    x = x0
    while x < x0 + w:
        bar = rng.choice((1, 1, 2, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y0, x + bar * 2 - 1, y0 + h), fill=255)
        x += bar * 2


@dataclass(frozen=True)
class _Layout:
    face: FontFace
    base: int  # font size of a normal row, pixels
    margin: int
    width: int

    def font(self, row: Row) -> ImageFont.FreeTypeFont:
        size = round(self.base * row.scale)
        if self.face.bitmap:  # bitmap faces only come in fixed sizes
            size = bitmap_size(self.face.path, size)
        return load_font(self.face.path, size)


def _layout(content: Content, rng: random.Random) -> _Layout:
    """Font, size and paper width: wide enough for the target characters and for every row."""
    face = pick_font(rng, [s.text for r in content.rows for s in r.segments])
    base = rng.randint(16, 30) if not face.bitmap else rng.choice((16, 20, 24, 28, 32))
    margin = rng.randint(12, 40)
    width = int(load_font(face.path, base).getlength("0" * rng.randint(30, 48))) + 2 * margin
    layout = _Layout(face, base, margin, width)
    for row in content.rows:
        font = layout.font(row)
        need = sum(font.getlength(s.text) for s in row.segments) + 24 * len(row.segments)
        width = max(width, int(need) + 2 * margin)
    return _Layout(face, base, margin, width)


def _draw_rule(draw: ImageDraw.ImageDraw, rng: random.Random, lay: _Layout, y: int) -> None:
    thick = rng.choice((1, 1, 2))
    dash = rng.random() < 0.5
    right = lay.width - lay.margin
    for x in range(lay.margin, right, 8 if dash else lay.width):
        draw.rectangle((x, y, min(x + (4 if dash else lay.width), right), y + thick - 1), fill=255)


def _draw_text_row(
    draw: ImageDraw.ImageDraw, lay: _Layout, row: Row, index: int, *, y: float, h: int
) -> list[PrintedLine]:
    """Draw a row's segments (left, centre or column, right); return their boxes."""
    font = lay.font(row)
    up, down = _vertical_extent(font)
    baseline = y + (h - (down - up)) / 2 - up
    stroke = 1 if (row.bold and not lay.face.bitmap and font.size >= 20) else 0
    out = []
    left_end = float(lay.margin)
    for seg in row.segments:
        length = font.getlength(seg.text)
        if seg.align == "left":
            x = float(lay.margin)
        elif seg.align == "right":
            x = lay.width - lay.margin - length
        elif len(row.segments) == 1:
            x = (lay.width - length) / 2
        else:  # a middle column, right-aligned at 62 % and never over the left text
            x = max(lay.width * 0.62 - length, left_end + 24)
        draw.text((x, baseline), seg.text, font=font, fill=255, anchor="ls", stroke_width=stroke)
        x0, _, x1, _ = draw.textbbox(
            (x, baseline), seg.text, font=font, anchor="ls", stroke_width=stroke
        )
        left_end = max(left_end, x1)
        box = (x0 - 2.0, baseline + up - 2.0, x1 + 2.0, baseline + down + 2.0)
        out.append(PrintedLine(seg.text, seg.role, index, box))
    return out


def render_flat(content: Content, rng: random.Random) -> Flat:
    """Lay the rows out like a till printer does and draw them; returns ink and segment boxes."""
    lay = _layout(content, rng)
    spacing = rng.uniform(1.15, 1.6)
    heights = []
    for row in content.rows:
        if row.graphic == "barcode":
            heights.append(rng.randint(40, 80))
        elif row.graphic == "rule":
            heights.append(int(lay.base * 0.8))
        else:
            heights.append(int(lay.font(row).size * spacing))
    top_pad, bottom_pad = rng.randint(20, 80), rng.randint(30, 120)
    img = Image.new("L", (lay.width, top_pad + sum(heights) + bottom_pad), 0)
    draw = ImageDraw.Draw(img)
    lines: list[PrintedLine] = []
    y = float(top_pad)
    for index, (row, h) in enumerate(zip(content.rows, heights, strict=True)):
        if row.graphic == "barcode":
            bw = rng.randint(lay.width // 3, lay.width - 2 * lay.margin)
            _barcode(draw, rng, x0=(lay.width - bw) // 2, y0=int(y) + 4, w=bw, h=h - 10)
        elif row.graphic == "rule":
            _draw_rule(draw, rng, lay, int(y + h / 2))
        else:
            lines += _draw_text_row(draw, lay, row, index, y=y, h=h)
        y += h
    ink = np.asarray(img, dtype=np.float32) / 255.0
    if lay.face.thermal and rng.random() < 0.3:  # a thermal head prints dots, not greys
        ink = (ink > rng.uniform(0.35, 0.6)).astype(np.float32)
    return Flat(ink=ink, lines=lines, font=lay.face.path.rsplit("/", 1)[-1])
