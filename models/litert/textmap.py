"""The text-line detector's geometry, shared by its training and the engine (NumPy + OpenCV only).

The detector sees the rectified receipt in grey, scaled so that its width is `width` pixels
(receipts are narrow and hold 30 to 50 characters a row, so this fixes the text's size better
than the long side does) unless its height would pass `max_side`, and padded to a multiple of
`STRIDE`. It answers one probability per pixel that the pixel lies in the *core* of a text line:
the line's box shrunk to `CORE_HEIGHT` of its height (and by a quarter of its height at each
end), so the cores of adjacent rows never touch. A line's box is found back by taking each
connected core and growing it by the inverse of that shrink. A core that runs a few degrees
off the page's rows (a receipt scanned or printed askew, curled paper) is grown along its own
direction: its box is a turned rectangle as thick as the row, where an upright box would take
in half of each neighbouring row (`TILT_MIN_LENGTH`); the engine crops such a box upright.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.document.geometry import quad_frame

STRIDE = 32
#: A core is this share of its line's height, centred.
CORE_HEIGHT = 0.5
#: ...and is shortened by this share of the line's height at each end.
CORE_END = 0.25

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class PageScale:
    """How a page was scaled and padded for the detector."""

    scale: float
    width: int  # scaled content, before padding
    height: int


def page_scale(width: int, height: int, target_width: int = 384, max_side: int = 1280) -> PageScale:
    """The scale that gives the page `target_width` columns, unless its height passes `max_side`."""
    scale = target_width / max(width, 1)
    if height * scale > max_side:
        scale = max_side / max(height, 1)
    return PageScale(scale, max(1, round(width * scale)), max(1, round(height * scale)))


def prepare_page(
    gray: np.ndarray, target_width: int = 384, max_side: int = 1280
) -> tuple[np.ndarray, PageScale]:
    """The detector's input [H, W] float32 in [0, 1] (padded white to STRIDE), and its scale."""
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    ps = page_scale(gray.shape[1], gray.shape[0], target_width, max_side)
    interp = cv2.INTER_AREA if ps.scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(gray, (ps.width, ps.height), interpolation=interp)
    h = -(-ps.height // STRIDE) * STRIDE
    w = -(-ps.width // STRIDE) * STRIDE
    page = np.full((h, w), 1.0, np.float32)
    page[: ps.height, : ps.width] = small.astype(np.float32) / 255.0
    return page, ps


def core_of(box: Sequence[float]) -> tuple[float, float, float, float]:
    """The core (x0, y0, x1, y1) of an axis-aligned line box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    h = max(y1 - y0, 1e-6)
    cy = (y0 + y1) / 2
    end = min(CORE_END * h, (x1 - x0) / 4)
    return x0 + end, cy - CORE_HEIGHT * h / 2, x1 - end, cy + CORE_HEIGHT * h / 2


def core_target(shape: tuple[int, int], boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """The uint8 {0, 1} target map of the cores of `boxes` (in the map's pixels)."""
    target = np.zeros(shape, np.uint8)
    for box in boxes:
        x0, y0, x1, y1 = core_of(box)
        ix0, iy0 = max(0, round(x0)), max(0, round(y0))
        ix1, iy1 = min(shape[1], max(ix0 + 1, round(x1))), min(shape[0], max(iy0 + 1, round(y1)))
        target[iy0:iy1, ix0:ix1] = 1
    return target


@dataclass(frozen=True)
class TextBox:
    """A found line: its quad (clockwise from top-left) in page pixels and its mean probability."""

    quad: Quad
    score: float


@dataclass(frozen=True)
class Growth:
    """How a found core becomes its line's box: height times `height`, and `end` of that full
    height added at each end. The defaults invert the training target's shrink exactly; a trained
    model's thresholded cores come out somewhat thicker than its targets, so each model carries
    its own figures, measured at export on held-out pages (`calibrate_growth`) and kept in its
    manifest entry's input spec (``box_growth``, ``box_end``)."""

    height: float = 1 / CORE_HEIGHT
    end: float = CORE_END


#: The growth that inverts the training target's shrink (a model without calibrated figures).
DEFAULT_GROWTH = Growth()


@dataclass(frozen=True)
class Core:
    """One connected core of a map: its bounding box (x, y, w, h) and mean probability, and
    its own frame: centre, direction (radians, positive turning down to the right as image rows
    grow), length along it and thickness across it (pixel edges, as the bounding box counts)."""

    x: int
    y: int
    w: int
    h: int
    score: float
    cx: float
    cy: float
    angle: float
    length: float
    thickness: float


#: A core is read along its own direction (its pixels' principal axis) when it is at least this
#: many thicknesses long and thinner across that direction than its upright box is tall; a
#: shorter one gives no reliable direction and is read upright. A line printed or photographed
#: a few degrees off the page's rows then gets a box as thick as its row, where an upright box
#: would take in half of each neighbouring row (SROIE 016: 3 degrees on rows 32 px apart put a
#: second row into the header's crop, read 'UTAINOON CALLERY' for 'LIGHTROOM GALLERY'). On
#: SROIE train end to end the four-field mean was 90.27 % with upright boxes, 91.57 % turning
#: only cores whose upright box was 25 % taller than the turned one, 92.02 % at 10 %, 92.47 %
#: turning every core this rule allows (a minimum length of 2.5 thicknesses: the same). SROIE
#: val, scored once each: 87.4 % upright, 89.8 % at 25 %, 89.4 % as shipped (with the layout's
#: row bands): one or two receipts either way, so the larger train split decided.
TILT_MIN_LENGTH = 4.0
#: Directions beyond this are not a tilted row but a blob, read upright.
TILT_MAX = np.radians(20.0)
#: Growth is calibrated on cores whose upright box is at most this much taller than their
#: thickness: the true boxes are upright, so a slanted row's is taller than the row.
CALIBRATION_SLANT = 1.1


def _core_frame(
    labels: np.ndarray, k: int, bbox: tuple[int, int, int, int]
) -> tuple[float, float, float, float, float]:
    """(cx, cy, angle, length, thickness) of component `k` with bounding box (x, y, w, h),
    upright unless it is tilted."""
    x, y, w, h = bbox
    upright = (x + w / 2, y + h / 2, 0.0, float(w), float(h))
    if w < TILT_MIN_LENGTH * 2 or h < 2:
        return upright
    ys, xs = np.nonzero(labels[y : y + h, x : x + w] == k)
    px, py = xs + 0.5, ys + 0.5
    mx, my = float(px.mean()), float(py.mean())
    dx, dy = px - mx, py - my
    angle = 0.5 * float(np.arctan2(2 * (dx * dy).mean(), (dx * dx).mean() - (dy * dy).mean()))
    if abs(angle) > TILT_MAX:
        return upright
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    length = float(u.max() - u.min()) + 1.0
    thickness = float(v.max() - v.min()) + 1.0
    if length < TILT_MIN_LENGTH * thickness or thickness >= h:
        return upright  # too short to give a direction, or the turned box is no thinner
    cu, cv = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    return x + mx + cu * c - cv * s, y + my + cu * s + cv * c, angle, length, thickness


def found_cores(
    prob: np.ndarray, threshold: float = 0.5, min_score: float = 0.6, min_core_height: float = 1.0
) -> list[Core]:
    """The connected cores of a core probability map."""
    binary = (prob >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
    out = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        if h < min_core_height or area < 3:
            continue
        score = float(prob[labels == k].mean())
        if score >= min_score:
            out.append(Core(x, y, w, h, score, *_core_frame(labels, k, (x, y, w, h))))
    return out


def rect_quad(cx: float, cy: float, angle: float, length: float, height: float) -> Quad:
    """The corners, clockwise from top-left, of a rectangle centred at (cx, cy) whose long side
    runs at `angle`."""
    ax, ay = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    nx, ny = -np.sin(angle) * height / 2, np.cos(angle) * height / 2
    return (
        (float(cx - ax - nx), float(cy - ay - ny)),
        (float(cx + ax - nx), float(cy + ay - ny)),
        (float(cx + ax + nx), float(cy + ay + ny)),
        (float(cx - ax + nx), float(cy - ay + ny)),
    )


def boxes_from_map(
    prob: np.ndarray,
    scale: float = 1.0,
    threshold: float = 0.5,
    min_score: float = 0.6,
    min_core_height: float = 1.0,
    *,
    growth: Growth = DEFAULT_GROWTH,
) -> list[TextBox]:
    """Line boxes from a core probability map, grown back to full lines, in reading order.

    `scale` is `PageScale.scale`: boxes come back in the original page's pixels.
    """
    out: list[TextBox] = []
    for core in found_cores(prob, threshold, min_score, min_core_height):
        full_h = core.thickness * growth.height
        length = core.length + 2 * growth.end * full_h
        quad = rect_quad(core.cx, core.cy, core.angle, length, full_h)
        out.append(TextBox(_scaled(quad, 1 / scale), core.score))
    return reading_order(out)


def _scaled(quad: Quad, f: float) -> Quad:
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = quad
    return ((ax * f, ay * f), (bx * f, by * f), (cx * f, cy * f), (dx * f, dy * f))


def calibrate_growth(
    samples: Sequence[tuple[np.ndarray, float, Sequence[Sequence[float]]]],
    threshold: float = 0.5,
    min_score: float = 0.6,
) -> Growth:
    """The growth that turns a model's cores into its true boxes, from (probability map, page
    scale, true boxes (x0, y0, x1, y1) in page pixels) of held-out pages: medians over every core
    whose centre lies inside exactly one true box and that runs along the page's rows
    (`CALIBRATION_SLANT`). The defaults when nothing matches."""
    heights: list[float] = []
    ends: list[float] = []
    for prob, scale, truth in samples:
        boxes = [tuple(v * scale for v in b) for b in truth]
        for core in found_cores(prob, threshold, min_score):
            cx, cy = core.cx, core.cy
            inside = [b for b in boxes if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
            if len(inside) != 1 or core.h > CALIBRATION_SLANT * core.thickness:
                continue
            x0, y0, x1, y1 = inside[0]
            full_h = y1 - y0
            if full_h <= 0:
                continue
            heights.append(full_h / core.thickness)
            ends.append(((x1 - x0) - core.length) / 2 / full_h)
    if not heights:
        return DEFAULT_GROWTH
    return Growth(float(np.median(heights)), max(0.0, float(np.median(ends))))


def reading_order(boxes: list[TextBox]) -> list[TextBox]:
    """Top to bottom by rows (boxes whose centres are within half a height share a row), then
    left to right."""
    rows: list[list[TextBox]] = []
    for b in sorted(boxes, key=lambda b: quad_frame(b.quad)[1]):
        _, cy, _, _, h = quad_frame(b.quad)
        if rows:
            last_cy = quad_frame(rows[-1][0].quad)[1]
            if abs(cy - last_cy) < h / 2:
                rows[-1].append(b)
                continue
        rows.append([b])
    return [b for row in rows for b in sorted(row, key=lambda b: b.quad[0][0])]


def quad_iou(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """Intersection over union of two convex quads."""
    pa, pb = np.asarray(a, np.float32), np.asarray(b, np.float32)
    area_a, area_b = abs(cv2.contourArea(pa)), abs(cv2.contourArea(pb))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class DetectionScore:
    """Matched boxes at an IoU threshold, summed over pages."""

    true_pos: int
    predicted: int
    truth: int

    @property
    def precision(self) -> float:
        return self.true_pos / max(self.predicted, 1)

    @property
    def recall(self) -> float:
        return self.true_pos / max(self.truth, 1)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: DetectionScore) -> DetectionScore:
        return DetectionScore(
            self.true_pos + other.true_pos,
            self.predicted + other.predicted,
            self.truth + other.truth,
        )


def matched_pairs(
    predicted: Sequence[Sequence[Sequence[float]]],
    truth: Sequence[Sequence[Sequence[float]]],
    iou: float = 0.5,
) -> list[tuple[int, int]]:
    """(predicted index, true index) pairs of a one-to-one greedy matching, best IoU first; a
    pair counts at IoU >= `iou`."""
    pairs = []
    for i, p in enumerate(predicted):
        for j, t in enumerate(truth):
            v = quad_iou(p, t)
            if v >= iou:
                pairs.append((v, i, j))
    pairs.sort(reverse=True)
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def match_boxes(
    predicted: Sequence[Sequence[Sequence[float]]],
    truth: Sequence[Sequence[Sequence[float]]],
    iou: float = 0.5,
) -> DetectionScore:
    """The `matched_pairs` count against the boxes on each side."""
    return DetectionScore(len(matched_pairs(predicted, truth, iou)), len(predicted), len(truth))


def merge_row_pieces(boxes: list[TextBox], gap: float) -> list[TextBox]:
    """Boxes in reading order with neighbours on one row joined when the space between them is
    under `gap` times their mean height and their heights agree within a factor 1.5.

    The detector's cores break at wide letter spacing and in big header fonts ('AIK HUAT' |
    'HARDWARE' | 'ENTERPRISE'); read as one line, the pieces give the recognizer and its language
    model the context of their neighbours. Columns (a description and its price) stay apart
    because their gap is many heights wide. `gap` 0 joins nothing.
    """
    if gap <= 0 or not boxes:
        return boxes
    out: list[TextBox] = []
    for b in boxes:
        if out:
            joined = _joined(out[-1], b, gap)
            if joined is not None:
                out[-1] = joined
                continue
        out.append(b)
    return out


def _joined(a: TextBox, b: TextBox, gap: float) -> TextBox | None:
    """`a` and `b` (b after a in reading order) as one box, if they are pieces of one row; each
    is measured in the frame of `a` (upright boxes: the page's)."""
    acx, acy, angle, alen, ha = quad_frame(a.quad)
    bcx, bcy, _, blen, hb = quad_frame(b.quad)
    c, s = np.cos(angle), np.sin(angle)
    # b's centre in a's frame: along (u) and across (v) a's direction
    u, v = (bcx - acx) * c + (bcy - acy) * s, -(bcx - acx) * s + (bcy - acy) * c
    same_row = abs(v) <= hb / 2 and abs(v) <= ha / 2
    similar = max(ha, hb) <= 1.5 * max(min(ha, hb), 1e-6)
    space = (u - blen / 2) - alen / 2
    if not (same_row and similar and space < gap * (ha + hb) / 2 and u - blen / 2 > -alen / 2):
        return None
    pts = np.asarray(a.quad + b.quad, np.float64) - (acx, acy)
    pu, pv = pts @ (c, s), pts @ (-s, c)
    u0, u1, v0, v1 = float(pu.min()), float(pu.max()), float(pv.min()), float(pv.max())
    mu, mv = (u0 + u1) / 2, (v0 + v1) / 2
    quad = rect_quad(acx + mu * c - mv * s, acy + mu * s + mv * c, angle, u1 - u0, v1 - v0)
    score = (a.score * alen + b.score * blen) / max(alen + blen, 1e-6)
    return TextBox(quad, score)
