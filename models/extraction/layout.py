"""Geometry of OCR lines: boxes, font height, rows, and reading order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.document.geometry import quad_frame
from models.receipt import OcrLine

#: The steepest direction (radians) a text row's box is taken to follow (the detector turns
#: boxes up to 20 degrees).
MAX_ROW_ANGLE = math.radians(30)
#: A box this many heights long or more says which way its row runs; a shorter one's slope is
#: local (a curled receipt tilts a short label one way and the price across from it the other).
SLOPE_MIN_LENGTH = 8.0


@dataclass(frozen=True, slots=True)
class Line:
    """An OCR line: its horizontal extent, its band (its own height about its centre, `_band`)
    and position on the page (0 top .. 1 bottom)."""

    id: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    order: int
    rel_y: float
    rel_height: float
    confidence: float
    #: The box's direction as dy/dx (0 for an upright box; a turned box follows a slanted row).
    slope: float = 0.0
    #: How much the box's slope says about its row's direction (`row_weight`).
    weight: float = 0.0

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    def same_row(self, other: Line) -> bool:
        """Whether the two lines share a text row: their bands overlap by more than half the
        smaller height where the row between them, followed along its direction, meets the
        other (a price beside a row slanting 4 degrees sits 30 px lower than the row's centre).

        The row's direction is the two boxes' slopes averaged by their lengths in heights; an
        upright box (slope 0: too short to measure, or truly upright) adds nothing. On a curled
        receipt the short label and price boxes at the two ends of a row tilt opposite ways
        ('Att betala' -5 degrees, '721,77 kr' +5), and following either one's own slope across
        the row lands a row away from the other."""
        # written out (not through helpers): `_rows` asks this of every pair of nearby lines
        wa, wb = self.weight, other.weight
        slope = (wa * self.slope + wb * other.slope) / (wa + wb) if wa + wb > 0 else 0.0
        shift = slope * ((other.x0 + other.x1) - (self.x0 + self.x1)) / 2
        overlap = min(self.y1 + shift, other.y1) - max(self.y0 + shift, other.y0)
        return overlap > 0.5 * max(min(self.y1 - self.y0, other.y1 - other.y0), 1.0)


@dataclass(frozen=True, slots=True)
class Page:
    """The lines of one receipt in reading order, with the page's extent."""

    lines: tuple[Line, ...]
    width: float
    height: float
    median_height: float
    rows: dict[int, tuple[Line, ...]]

    def by_id(self, line_id: int) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(line_id)

    def row_of(self, line: Line) -> list[Line]:
        """Lines on the same row as `line` (itself included), left to right."""
        return list(self.rows[line.id])

    def left_of(self, line: Line) -> list[Line]:
        return [
            o for o in self.row_of(line) if o is not line and o.x1 <= line.x0 + 0.3 * line.height
        ]

    def right_of(self, line: Line) -> list[Line]:
        return [
            o for o in self.row_of(line) if o is not line and o.x0 >= line.x1 - 0.3 * line.height
        ]

    def above(self, line: Line) -> Line | None:
        """The nearest line above that overlaps horizontally, if it is close."""
        best: Line | None = None
        for o in self.lines:
            near = o.y1 <= line.cy and line.cy - o.cy < 2.5 * line.height
            if near and not o.same_row(line) and (best is None or o.cy > best.cy):
                best = o
        return best


def build_page(lines: Sequence[OcrLine], image_size: tuple[int, int] | None = None) -> Page:
    """Index OCR lines for geometry: boxes to extents, sorted top to bottom then left to right."""
    raw: list[tuple[OcrLine, float, float, float, float]] = []
    slopes = {}
    for ocr in lines:
        xs = [p[0] for p in ocr.box]
        _, cy, angle, _, band = quad_frame(ocr.box)
        top, bottom = _band(cy, band)
        raw.append((ocr, min(xs), top, max(xs), bottom))
        # a box more turned than any text row (corners listed in another order) counts upright
        slopes[id(ocr)] = math.tan(angle) if abs(angle) <= MAX_ROW_ANGLE else 0.0
    if image_size is not None:
        width, height = float(image_size[0]), float(image_size[1])
    else:
        width = max((r[3] for r in raw), default=1.0)
        height = max((r[4] for r in raw), default=1.0)
    top = min((r[2] for r in raw), default=0.0)
    span = max(height - (0.0 if image_size else top), 1.0)
    heights = sorted(max(r[4] - r[2], 1.0) for r in raw)
    median = heights[len(heights) // 2] if heights else 1.0
    ordered = _reading_order(raw)
    out = [
        Line(
            id=ocr.id,
            text=ocr.text,
            x0=x0,
            y0=y0,
            x1=x1,
            y1=y1,
            order=i,
            rel_y=((y0 + y1) / 2 - (0.0 if image_size else top)) / span,
            rel_height=max(y1 - y0, 1.0) / median,
            confidence=ocr.confidence,
            slope=slopes[id(ocr)],
            weight=row_weight(x1 - x0, y1 - y0, slopes[id(ocr)]),
        )
        for i, (ocr, x0, y0, x1, y1) in enumerate(ordered)
    ]
    return Page(
        lines=tuple(out),
        width=max(width, 1.0),
        height=max(height, 1.0),
        median_height=median,
        rows=_rows(out),
    )


def _reading_order(
    raw: list[tuple[OcrLine, float, float, float, float]],
) -> list[tuple[OcrLine, float, float, float, float]]:
    """Boxes (line, x0, y0, x1, y1) row by row from the top, each row left to right.

    Sorting by centre alone puts the right half of a printed row first whenever its box sits a
    pixel higher, which a detector's boxes often do ('BANDAR BARU PERMAS JAYA' before 'NO.1,
    JALAN PERMAS 10/5,' on the same row); so boxes are first grouped into rows, a box joining the
    row when each of the two boxes' vertical centre lies within the other (a small word over
    the top of a big logo word is a row of its own).

    A box's vertical extent is its band (`_band`), as everywhere in this module.
    """
    rows: list[list[tuple[OcrLine, float, float, float, float]]] = []
    for box in sorted(raw, key=lambda r: ((r[2] + r[4]) / 2, r[1])):
        if rows:
            first = rows[-1][0]
            f0, f1, b0, b1 = first[2], first[4], box[2], box[4]
            if b0 <= (f0 + f1) / 2 <= b1 and f0 <= (b0 + b1) / 2 <= f1:
                rows[-1].append(box)
                continue
        rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda r: r[1])]


def _band(cy: float, height: float) -> tuple[float, float]:
    """(top, bottom) of a box's own height (its left side) about its centre: a line's vertical
    extent, its font height and its row here.

    Not the box's upright bounds: the detector turns a slanted row's box along the row, and the
    upright bounds of a row slanting 3 degrees over 500 px hold the neighbouring rows' centres
    (an address read 'KLANG ...' before 'BANDAR BUKIT RAJA' on the row above it) and make its
    font look a third taller than the same font's upright piece beside it ('FIVE' + 'STAR CASH
    & CARRY', one printed name, were not joined). For upright boxes the two are the same.
    """
    return cy - height / 2, cy + height / 2


def row_weight(length: float, height: float, slope: float) -> float:
    """How much a box's slope counts towards its row's direction (`Line.same_row`, where two
    lines' slopes are averaged by these weights): its length in heights, and nothing for an
    upright box or a short one (`SLOPE_MIN_LENGTH`)."""
    heights = length / max(height, 1.0)
    return heights if slope != 0.0 and heights >= SLOPE_MIN_LENGTH else 0.0


def _rows(lines: list[Line]) -> dict[int, tuple[Line, ...]]:
    """For each line, the lines sharing its row, left to right (lines are sorted by centre).

    Two lines share a row when their bands overlap by more than half the smaller height, along
    the row's direction (`Line.same_row`); only neighbours whose centres lie within two line
    heights, plus the line's own rise over its length, are tried.
    """
    cy = [ln.cy for ln in lines]
    rows: dict[int, tuple[Line, ...]] = {}
    n = len(lines)
    for i, line in enumerate(lines):
        row = [line]
        reach = 2 * line.height + abs(line.slope) * (line.x1 - line.x0)
        for step in (-1, 1):
            j = i + step
            while 0 <= j < n and abs(cy[j] - cy[i]) < reach:
                if line.same_row(lines[j]):
                    row.append(lines[j])
                j += step
        rows[line.id] = tuple(sorted(row, key=lambda o: o.x0))
    return rows
