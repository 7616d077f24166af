"""Geometry of OCR lines: boxes, font height, rows, and reading order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.document.geometry import quad_frame
from models.receipt import OcrLine


@dataclass(frozen=True, slots=True)
class Line:
    """An OCR line with its axis-aligned box and position on the page (0 top .. 1 bottom)."""

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

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    def same_row(self, other: Line) -> bool:
        """Whether the two lines share a text row (their vertical centres lie in each other)."""
        overlap = min(self.y1, other.y1) - max(self.y0, other.y0)
        return overlap > 0.5 * min(self.height, other.height)


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
    for ocr in lines:
        xs = [p[0] for p in ocr.box]
        ys = [p[1] for p in ocr.box]
        raw.append((ocr, min(xs), min(ys), max(xs), max(ys)))
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

    A box's vertical extent here is its own height about its centre, not its upright bounds:
    the detector turns a slanted row's box along the row, and the upright bounds of rows
    slanting 3 degrees over 500 px hold their neighbours' centres (an address read 'KLANG ...'
    before 'BANDAR BUKIT RAJA' on the row above it). For upright boxes the two are the same.
    """
    bands = {id(r[0]): _band(r[0]) for r in raw}
    rows: list[list[tuple[OcrLine, float, float, float, float]]] = []
    for box in sorted(raw, key=lambda r: ((r[2] + r[4]) / 2, r[1])):
        if rows:
            first = rows[-1][0]
            (f0, f1), (b0, b1) = bands[id(first[0])], bands[id(box[0])]
            if b0 <= (f0 + f1) / 2 <= b1 and f0 <= (b0 + b1) / 2 <= f1:
                rows[-1].append(box)
                continue
        rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda r: r[1])]


def _band(line: OcrLine) -> tuple[float, float]:
    """(top, bottom) of a box's own height (its left side) about its centre."""
    _, cy, _, _, height = quad_frame(line.box)
    return cy - height / 2, cy + height / 2


def _rows(lines: list[Line]) -> dict[int, tuple[Line, ...]]:
    """For each line, the lines sharing its row, left to right (lines are sorted by centre).

    Two lines share a row when their vertical overlap exceeds half the smaller height
    (`Line.same_row`); only neighbours whose centres lie within two line heights are tried.
    """
    y0 = [ln.y0 for ln in lines]
    y1 = [ln.y1 for ln in lines]
    h = [max(b - a, 1.0) for a, b in zip(y0, y1, strict=True)]
    cy = [(a + b) / 2 for a, b in zip(y0, y1, strict=True)]
    rows: dict[int, tuple[Line, ...]] = {}
    n = len(lines)
    for i, line in enumerate(lines):
        row = [line]
        reach = 2 * h[i]
        for step in (-1, 1):
            j = i + step
            while 0 <= j < n and abs(cy[j] - cy[i]) < reach:
                overlap = min(y1[i], y1[j]) - max(y0[i], y0[j])
                if overlap > 0.5 * min(h[i], h[j]):
                    row.append(lines[j])
                j += step
        rows[line.id] = tuple(sorted(row, key=lambda o: o.x0))
    return rows
