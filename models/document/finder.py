"""Finding the receipt in a photo: the finder contract and the classical OpenCV finder.

A finder looks at a countertop photo and answers with the receipt's four corners, or with
nothing. It SHALL return None rather than invent a quadrilateral when no receipt is there, and
SHALL say when the image is already a flat scan (the paper fills the frame), in which case the
quad is the paper's outline where a margin shows it, else the frame itself. A trained LiteRT
finder will implement the same `ReceiptFinder` protocol.

`ContourFinder` looks for bright, colourless, four-cornered regions that stand out from what
surrounds them: paper on a countertop. Every candidate must pass checks of shape (four corners,
filling its outline), size and contrast across its sides, so the grain of an empty countertop
is not taken for a receipt; the best-scoring one wins. Without a candidate, the frame is a flat
scan only if it looks like paper with print on it (rows of small dark marks).

Known limits, measured on `models.synth` scenes (60 receipts, 60 empty countertops): about half
the receipts found within 3 % of the frame; white paper on a white or checkered surface, or
under dappled light, is often missed; 1 to 2 empty countertops in 60 show a pale card or a
shadow edge taken for paper. Missing a receipt is the safe failure: the pipeline reads the
whole frame and marks the receipt for review. A receipt found on a countertop has its outline
snapped onto the paper's edges in the full frame (`models.document.refine`, setting `refine`):
on 100 generated frames mean IoU 0.649 -> 0.666, no receipt newly missed (the misses and the
wrong regions dominate the figure; refinement only sharpens a roughly right outline).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from models.document.geometry import frame_quad, order_corners, quad_area
from models.document.refine import RefineSettings, refine_quad

#: The finder works on a copy of the image scaled to this longest side.
WORK_SIDE = 640


@dataclass(frozen=True)
class Detection:
    """Where the receipt is. `quad` is float32 (4, 2), clockwise from top-left, in pixels of the
    image given to the finder; `score` in [0, 1] is how sure the finder is. `others` are the
    outlines of other receipts seen in the same photo (the largest one is `quad`): the gate
    asks for each to be scanned on its own."""

    quad: np.ndarray
    score: float
    flat_scan: bool = False
    others: tuple[np.ndarray, ...] = ()


class ReceiptFinder(Protocol):
    """Finds the receipt's outline in a BGR image; see the module docstring for the contract."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def find(self, image: np.ndarray) -> Detection | None:
        """The receipt's outline, a flat-scan verdict, or None when there is no receipt."""
        ...


@dataclass(frozen=True)
class ContourFinderSettings:
    """Tuning of the classical finder; defaults set on generated countertop photos and the
    SROIE scans (624 of 626 found, 618 of them as flat scans)."""

    #: Smallest receipt, as a share of the frame's area.
    min_area: float = 0.03
    #: The region must fill at least this share of its quadrilateral (and vice versa).
    min_fill: float = 0.88
    #: Paper must be this much brighter (L*, 0..255) than the surface just outside its sides.
    min_contrast: float = 18.0
    #: Paper is colourless: mean chroma (Lab, 0..~180) inside at most this.
    max_chroma: float = 28.0
    #: A region covering this share of the frame is the paper filling it: a flat scan.
    flat_area: float = 0.85
    #: Flat scan without a visible outline: share of the frame that must look like paper.
    flat_paper_share: float = 0.6
    #: ...with this range of it in ink (dark strokes), so a bare white surface isn't one...
    flat_ink_share: tuple[float, float] = (0.002, 0.35)
    #: ...at least this share of the ink in marks of a word's size, not long lines (grout)...
    flat_print_share: float = 0.2
    #: ...laid out in rows: std/mean of ink per pixel row (text 0.7..3, scattered flecks 0.25).
    flat_row_variation: float = 0.5
    #: Snap a receipt's outline onto its edges in the full frame (`models.document.refine`):
    #: the outline found on the 640-pixel copy is off by a pixel or two of it, and rounded.
    refine: bool = True
    refine_settings: RefineSettings = field(default_factory=RefineSettings)


@dataclass(frozen=True)
class _Candidate:
    quad: np.ndarray  # work pixels
    score: float
    area_share: float
    contrast: float


class ContourFinder:
    """`ReceiptFinder` with OpenCV contours; see the module docstring."""

    name = "contour"
    version = "1"

    def __init__(self, settings: ContourFinderSettings | None = None) -> None:
        self.settings = settings or ContourFinderSettings()

    def find(self, image: np.ndarray) -> Detection | None:
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise ValueError(f"expected a BGR image, got shape {image.shape}")
        height, width = image.shape[:2]
        scale = min(1.0, WORK_SIDE / max(height, width))
        small = (
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1.0
            else image
        )
        lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
        lightness = cv2.GaussianBlur(lab[:, :, 0], (5, 5), 0)
        chroma = np.hypot(
            lab[:, :, 1].astype(np.float32) - 128, lab[:, :, 2].astype(np.float32) - 128
        )
        s = self.settings
        candidates = self._candidates(lightness, chroma)
        on_counter = [c for c in candidates if c.area_share < s.flat_area]
        if on_counter:
            best = max(on_counter, key=lambda c: c.score)
            quad = order_corners(best.quad / scale)
            if s.refine:
                quad = order_corners(refine_quad(image, quad, s.refine_settings))
            return Detection(quad, best.score)
        # The paper may fill the frame. With a visible outline (a scanner's dark margin) it is
        # used; without, the frame counts as paper only if it looks like paper with ink on it.
        outlined = [c for c in candidates if c.contrast >= s.min_contrast]
        if outlined:
            best = max(outlined, key=lambda c: c.score)
            return Detection(order_corners(best.quad / scale), best.score, flat_scan=True)
        if self._looks_like_flat_scan(lightness, chroma):
            return Detection(frame_quad(width, height), 0.5, flat_scan=True)
        return None

    def _candidates(self, lightness: np.ndarray, chroma: np.ndarray) -> list[_Candidate]:
        """Quadrilaterals of paper, in work pixels, that pass the checks of shape and contrast."""
        # Paper is bright and colourless: penalise colour, then split bright from dark.
        paperness = np.clip(lightness.astype(np.float32) - 1.5 * chroma, 0, 255).astype(np.uint8)
        otsu, _ = cv2.threshold(paperness, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        top = float(np.percentile(paperness, 99))
        k = max(3, round(0.015 * max(paperness.shape)))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
        found: list[_Candidate] = []
        # Otsu splits bright from dark; a bright countertop joins the paper at that level, so
        # stricter levels between it and the paper's white are tried too.
        for level in (otsu, otsu + (top - otsu) / 3, otsu + 2 * (top - otsu) / 3):
            bright = np.where(paperness > level, 255, 0).astype(np.uint8)
            filled = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, kernel)  # fill the text in
            mask = cv2.morphologyEx(filled, cv2.MORPH_OPEN, kernel)  # drop specks and threads
            found.extend(self._regions(mask, lightness, chroma))
        return found

    def _regions(
        self, mask: np.ndarray, lightness: np.ndarray, chroma: np.ndarray
    ) -> Iterator[_Candidate]:
        """The regions of a paper mask that pass as a receipt."""
        s = self.settings
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        frame_area = float(mask.size)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            region_area = cv2.contourArea(contour)
            if region_area < s.min_area * frame_area:
                break
            quad = _quad_of(contour)
            if quad is None:
                continue
            quad = np.clip(quad, 0, [mask.shape[1] - 1, mask.shape[0] - 1]).astype(np.float32)
            area = quad_area(quad)
            fill = min(region_area, area) / max(region_area, area)
            if fill < s.min_fill or not _sane_angles(quad):
                continue
            contrast, inside_chroma = _contrast(quad, lightness, chroma)
            area_share = area / frame_area
            if inside_chroma > s.max_chroma:
                continue
            if contrast < s.min_contrast and area_share < s.flat_area:
                continue  # not set off from its surroundings: texture, not paper
            score = _score(area_share, fill, contrast, s.min_contrast)
            yield _Candidate(quad, score, area_share, contrast)

    def _looks_like_flat_scan(self, lightness: np.ndarray, chroma: np.ndarray) -> bool:
        """Paper fills the frame: mostly bright and colourless, with print on it.

        Print is many small dark marks (characters); the grout of tiles or the veins of stone
        are a few long ones, so they don't count.
        """
        s = self.settings
        paper_level = float(np.percentile(lightness, 90))
        if paper_level < 120:
            return False
        paper = (lightness >= paper_level - 40) & (chroma <= s.max_chroma)
        if paper.mean() < s.flat_paper_share:
            return False
        ink = cv2.adaptiveThreshold(
            lightness, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 15, 25
        )
        low, high = s.flat_ink_share
        if not low <= float((ink > 0).mean()) <= high:
            return False
        # Print runs in rows: the ink per pixel row varies far more than scattered flecks do.
        rows = (ink > 0).mean(axis=1)
        if float(rows.std()) < s.flat_row_variation * float(rows.mean()):
            return False
        count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        marks = stats[1:count]
        height, width = lightness.shape[:2]
        small = (marks[:, cv2.CC_STAT_HEIGHT] <= 0.05 * height) & (
            marks[:, cv2.CC_STAT_WIDTH] <= 0.5 * width
        )
        in_small = float(marks[small, cv2.CC_STAT_AREA].sum())
        in_all = float(marks[:, cv2.CC_STAT_AREA].sum())
        return int(small.sum()) >= 20 and in_small >= s.flat_print_share * in_all


def _quad_of(contour: np.ndarray) -> np.ndarray | None:
    """Four corners that best outline a contour, or None when it has no four-cornered shape."""
    hull = cv2.convexHull(contour)
    if len(hull) < 4:
        return None
    quad = np.asarray(
        cv2.approxPolyN(hull.astype(np.float32), 4, ensure_convex=True), dtype=np.float32
    ).reshape(-1, 2)
    return quad if quad.shape == (4, 2) else None


def _sane_angles(quad: np.ndarray, low: float = 35.0, high: float = 145.0) -> bool:
    """Each corner between `low` and `high` degrees: a rectangle seen in perspective."""
    pts = order_corners(quad)
    for i in range(4):
        a = pts[i - 1] - pts[i]
        b = pts[(i + 1) % 4] - pts[i]
        cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        if not low <= angle <= high:
            return False
    return True


def _contrast(quad: np.ndarray, lightness: np.ndarray, chroma: np.ndarray) -> tuple[float, float]:
    """(contrast across the quad's weakest side, mean chroma inside).

    A side's contrast is the paper's level in a band just inside it minus the median of a band
    just outside. Sides lying on the frame's border have no outside and are skipped; a quad
    with fewer than two other sides (it fills the frame, or a shadow cuts it off) has
    contrast 0. Measuring across each side, rather than whole regions, keeps a lighting
    gradient from passing for a receipt's edge.
    """
    height, width = lightness.shape[:2]
    inside = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad).astype(np.int32), 255)
    core = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0
    inner_chroma = float(chroma[core].mean()) if core.any() else 255.0
    band = max(3, round(0.012 * max(height, width)))
    min_side = 0.1 * min(height, width)  # shorter sides are corners of a ragged region
    pts = order_corners(quad)
    contrasts = []
    for i in range(4):
        a, b = pts[i], pts[(i + 1) % 4]
        if _on_border(a, b, width, height, band) or np.linalg.norm(b - a) < min_side:
            continue
        strip = np.zeros_like(inside)
        cv2.line(strip, _pt(a), _pt(b), 255, thickness=2 * band)
        near_in = (strip > 0) & (inside > 0)
        near_out = (strip > 0) & (inside == 0)
        if near_in.sum() < 10 or near_out.sum() < 10:
            continue
        # The paper's level (its upper quantile, ignoring print) against the surface's median.
        contrasts.append(
            float(np.percentile(lightness[near_in], 75)) - float(np.median(lightness[near_out]))
        )
    # Paper on a counter shows at least two edges; a region cut off by a shadow shows one.
    return (min(contrasts) if len(contrasts) >= 2 else 0.0), inner_chroma


def _on_border(a: np.ndarray, b: np.ndarray, width: int, height: int, tol: float) -> bool:
    """Whether the segment a-b runs along one of the frame's edges."""
    xs, ys = (a[0], b[0]), (a[1], b[1])
    return bool(
        max(xs) <= tol
        or min(xs) >= width - 1 - tol
        or max(ys) <= tol
        or min(ys) >= height - 1 - tol
    )


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _score(area_share: float, fill: float, contrast: float, min_contrast: float) -> float:
    """How sure we are, in [0, 1]: well-filled, clearly contrasting and not tiny."""
    strength = min(1.0, max(contrast, 0.0) / (3 * min_contrast))
    return float(np.clip(0.4 * fill + 0.4 * strength + 0.2 * min(1.0, area_share / 0.2), 0, 1))
