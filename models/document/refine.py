"""Snapping a coarse receipt quad onto the paper's real edges, to sub-pixel precision.

The corner model sees the frame at 192x256 and places corners to 1-3 % of the receipt's
diagonal; the contour finder works on a 640-pixel copy and rounds its outline to whole pixels
of it. Neither is precise enough for a rectified receipt to line up (IoU 0.95 of a narrow
receipt is a pixel or two per side). `refine_quad` takes such a quad and looks again, on a copy
of the frame at `RefineSettings.work_side`, for each side's edge:

1. Colours. The paper's colour is the median (Lab) of the quad's middle; each side's surface
   colour is the median of the outer part of its search band. Every pixel along the profiles
   is projected onto the line between the two, so paper reads 1 and the surface 0 whatever
   the edge is made of: brightness, colour (white paper on a pale pink tray) or both. A side
   whose two colours are too close (white paper on a white surface) has no edge to find.
2. Profiles. Points spread along the side each look along the side's normal, a band of a few
   % of the quad's diagonal in and out. The edge response at each offset is the median of the
   profile over a window inside minus the median over a window outside: a step from paper to
   surface, of one sign only. Medians over windows wider than a stroke make print, dashed rules
   and thin wood grain (dark on one side, paper or surface again right after) answer weakly,
   while the paper's edge (paper all the way in, surface all the way out) answers fully. The
   medians' step is flat while the windows' boundary is within half a window of a sharp edge,
   so the response is the smaller of it and the same step of means, which peaks at the edge.
   The few strongest local maxima of each profile are candidates, placed to sub-pixel by a
   parabola through the gradient's peak.
3. Fit. A curve d(s) = a + b s + c sin(pi s) (s in 0..1 along the side; c is the bow at the
   middle, kept within `max_bow` of the side's length) is found by RANSAC over candidate
   triples from the side's three thirds, scored by the summed response of the points it
   explains times the squared share of the side where paper lies just inside it: a line of
   text, a row of a checkered cloth or a second receipt explains only part of a side, or has
   surface inside it on part of its length; the paper's edge has neither fault. The inliers
   are then refitted by weighted least squares with the bow damped, so a straight edge stays
   straight. A curled sheet's edges are bowed and its true corners are where its bowed sides
   meet, so each corner is where the two fitted curves intersect (their tangents,
   re-linearised a few times), not where two chords would. A side with no edge in its band is
   looked for again in a wider one (`retry_band`): the coarse quad may be off by more.
4. Checks. A side keeps its coarse line when too few of its points agree (`min_support`) or
   its fit strays far beyond the band; the whole result is dropped for the coarse quad when
   it is not convex, has a corner outside `angle_range`, turns a corner by more than
   `max_turn` degrees, moves a corner by more than `max_move` of the diagonal or changes the
   area by more than `max_area_change`; sides are given back their coarse line, the least
   supported first, until it passes. Refinement thus never wanders far from the quad it was
   given: when in doubt, the coarse answer stands.

Sides off the frame have no visible edge: profile points outside it give no response, so such
a side keeps its coarse line, and the corners are clipped to the frame (as the synthetic
labels are). Everything is NumPy and OpenCV; only the sampled points are converted to Lab.

Measured (`python -m tests.benchmarks.bench_refine`, 100 generated 768x1024 frames, seeds 7e12+):
true corners plus Gaussian noise of 1/2/3 % of the diagonal give mean IoU 0.96/0.92/0.89 and
corner error 1.3/2.5/3.8 %, refined 0.99/0.99/0.99 and 0.2/0.3/0.4 %, 0-5 % of frames a little
worse; an exact quad moves by 0.1-0.2 % of the diagonal on average. About 5 ms per frame on one
thread. Weak spots: a checkered cloth whose pale squares match the paper, a second receipt
touching the first, and white paper on a white surface with no shadow at its edge (no edge:
the coarse quad stands).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

#: Largest side of the copy the edges are searched on (768x1024 frames are halved).
WORK_SIDE = 512


@dataclass(frozen=True)
class RefineSettings:
    """Tuning of `refine_quad`; defaults set on generated countertop photos (seeds 7e12+)."""

    #: The frame is searched on a copy with this longest side (never upscaled).
    work_side: int = WORK_SIDE
    #: Points along each side that look for its edge.
    samples: int = 40
    #: How far the edge is looked for, in and out of the coarse side, as a share of the diagonal.
    band: float = 0.07
    #: A side without an edge in the band looks again this far.
    retry_band: float = 0.12
    #: Width of the step windows, as a share of the diagonal (at least 3 work pixels).
    window: float = 0.025
    #: Smallest step (in units of the paper-to-surface contrast) that counts as an edge.
    min_step: float = 0.35
    #: Paper and surface must differ by at least this (Lab distance, L in 0..100).
    min_contrast: float = 6.0
    #: Candidate edges kept per profile.
    candidates: int = 3
    #: RANSAC hypotheses per side.
    hypotheses: int = 160
    #: Just inside a side's edge the profile reads at least this (paper 1, surface 0).
    inside_level: float = 0.6
    #: A candidate within this many work pixels of a curve supports it.
    tolerance: float = 1.5
    #: Share of a side's points that must support its edge.
    min_support: float = 0.45
    #: Largest bow of a side at its middle, as a share of its length.
    max_bow: float = 0.08
    #: Largest move of a corner, as a share of the diagonal.
    max_move: float = 0.12
    #: Every corner of the result within this range of degrees...
    angle_range: tuple[float, float] = (30.0, 150.0)
    #: ...and within this many degrees of the coarse quad's.
    max_turn: float = 25.0
    #: The area may change by at most this share.
    max_area_change: float = 0.35
    #: RANSAC's seed, so a frame always gives the same answer.
    seed: int = 0


@dataclass(frozen=True)
class _Side:
    """One side in work pixels: from `start`, along `along` for `length`, `normal` outward."""

    start: np.ndarray
    along: np.ndarray
    normal: np.ndarray
    length: float

    def point(self, s: float, coef: np.ndarray) -> np.ndarray:
        a, b, c = coef
        d = a + b * s + c * np.sin(np.pi * s)
        return np.asarray(self.start + s * self.length * self.along + d * self.normal)

    def tangent(self, s: float, coef: np.ndarray) -> np.ndarray:
        _, b, c = coef
        return np.asarray(
            self.length * self.along + (b + c * np.pi * np.cos(np.pi * s)) * self.normal
        )


def refine_quad(
    image: np.ndarray, quad: np.ndarray, settings: RefineSettings | None = None
) -> np.ndarray:
    """`quad` (4, 2) snapped onto the paper's edges in a BGR (or grey) uint8 frame.

    The corners keep their order; float32 (4, 2) in the frame's pixels, clipped to the frame.
    Sides without a clear edge keep their coarse line; see the module docstring.
    """
    return refine_with_edges(image, quad, settings)[0]


def refine_with_edges(
    image: np.ndarray, quad: np.ndarray, settings: RefineSettings | None = None
) -> tuple[np.ndarray, int]:
    """`refine_quad`'s quad and how many of its sides showed the paper's edge (0 to 4).

    A receipt on a countertop shows its edges; white paper on a white scanner bed, or paper
    filling the picture, shows none or few: the count tells a photo's outline from a scan's.
    """
    s = settings or RefineSettings()
    coarse = np.asarray(quad, np.float64).reshape(4, 2)
    height, width = image.shape[:2]
    if image.size == 0 or not np.isfinite(coarse).all():
        return np.asarray(coarse, np.float32), 0
    scale = min(1.0, s.work_side / max(height, width))
    bgr = _work_image(image, scale)
    work = coarse * scale
    diag = max(float(np.linalg.norm(work[2] - work[0])), float(np.linalg.norm(work[3] - work[1])))
    if diag < 20 or _area(work) < 1.0:
        return np.asarray(coarse, np.float32), 0
    sides = _sides(work)
    if sides is None:
        return np.asarray(coarse, np.float32), 0
    coefs, support = _fit_sides(bgr, work, sides, diag, s)
    if min(support) == 0 and s.retry_band > s.band:  # a side may lie beyond the band
        wide = _fit_sides(bgr, work, sides, diag, replace(s, band=s.retry_band))
        for i in range(4):
            if support[i] == 0:
                coefs[i], support[i] = wide[0][i], wide[1][i]
    refined = _checked_quad(work, sides, coefs, support=support, diag=diag, s=s)
    out = refined / scale
    edges = sum(v > 0 for v in support)
    return np.asarray(np.clip(out, 0, [width - 1, height - 1]), np.float32), edges


def _work_image(image: np.ndarray, scale: float) -> np.ndarray:
    """The frame at `scale` as float32 BGR in 0..1 (converted to Lab only where sampled)."""
    bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if scale < 1.0:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.asarray(bgr, np.float32) / np.float32(255.0)


def _area(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _sides(q: np.ndarray) -> list[_Side] | None:
    centre = q.mean(axis=0)
    out = []
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 4:
            return None
        along = (b - a) / length
        normal = np.array([along[1], -along[0]])
        if np.dot((a + b) / 2 - centre, normal) < 0:
            normal = -normal
        out.append(_Side(a, along, normal, length))
    return out


def _fit_sides(
    bgr: np.ndarray, q: np.ndarray, sides: list[_Side], diag: float, s: RefineSettings
) -> tuple[list[np.ndarray], list[float]]:
    """Each side's curve coefficients (a, b, c) in work pixels, and its support (0 = coarse)."""
    band = max(4, round(s.band * diag))
    win = max(3, round(s.window * diag))
    n = s.samples
    ts = np.linspace(0.02, 0.98, n)
    offsets = np.arange(-band - win, band + win + 1, dtype=np.float64)
    # Every profile point of every side, plus a grid in the quad's middle, in one remap.
    xs, ys = [], []
    for side in sides:
        base = side.start[None, :] + (ts * side.length)[:, None] * side.along[None, :]
        pts = base[:, None, :] + offsets[None, :, None] * side.normal[None, None, :]
        xs.append(pts[..., 0])
        ys.append(pts[..., 1])
    g = np.linspace(0.25, 0.75, offsets.size)
    u, v = np.meshgrid(g, np.linspace(0.25, 0.75, 8))
    mid = (
        ((1 - u) * (1 - v))[..., None] * q[0]
        + (u * (1 - v))[..., None] * q[1]
        + (u * v)[..., None] * q[2]
        + ((1 - u) * v)[..., None] * q[3]
    )
    map_x = np.concatenate([*xs, mid[..., 0]]).astype(np.float32)
    map_y = np.concatenate([*ys, mid[..., 1]]).astype(np.float32)
    h, w = bgr.shape[:2]
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    sampled = cv2.cvtColor(
        cv2.remap(bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
        cv2.COLOR_BGR2Lab,
    )
    mid_ok = inside[4 * n :]
    coarse_coef = np.zeros(3)
    if mid_ok.sum() < 8:
        return [coarse_coef] * 4, [0.0] * 4
    paper = np.median(sampled[4 * n :][mid_ok], axis=0)
    rng = np.random.default_rng(s.seed)
    coefs: list[np.ndarray] = []
    support: list[float] = []
    for i, side in enumerate(sides):
        prof = sampled[i * n : (i + 1) * n]
        ok = inside[i * n : (i + 1) * n]
        found = _side_edge(
            prof, ok, paper, side=side, ts=ts, offsets=offsets, band=band, win=win, rng=rng, s=s
        )
        coefs.append(coarse_coef if found is None else found[0])
        support.append(0.0 if found is None else found[1])
    return coefs, support


def _side_edge(  # noqa: PLR0911 (each way of finding no edge says so)
    prof: np.ndarray,
    ok: np.ndarray,
    paper: np.ndarray,
    *,
    side: _Side,
    ts: np.ndarray,
    offsets: np.ndarray,
    band: int,
    win: int,
    rng: np.random.Generator,
    s: RefineSettings,
) -> tuple[np.ndarray, float] | None:
    """(coefficients, support) of one side's edge, or None when it shows none."""
    n = ts.size
    outer = (offsets >= band // 2)[None, :] & ok
    if outer.sum() < 4 * n:  # little of the surface is in the frame here
        return None
    surface = np.median(prof[outer], axis=0)
    # The paper's colour next to this side (light and shadow vary over a sheet) unless that
    # is no paper at all (the coarse side lies well inside the surface): then the middle's.
    inner = (offsets <= -band // 2)[None, :] & ok
    if inner.sum() >= 4 * n:
        near = np.median(prof[inner], axis=0)
        if np.linalg.norm(near - surface) > np.linalg.norm(paper - surface):
            paper = near
    gap = paper - surface
    contrast = float(np.linalg.norm(gap))
    if contrast < s.min_contrast:
        return None
    # Paper reads 1, the surface 0; points outside the frame give no step.
    f = ((prof - surface) @ gap) / contrast**2
    f[~ok] = np.nan
    windows = np.median(np.lib.stride_tricks.sliding_window_view(f, win, axis=1), axis=2)
    # Response at offset index j (of the central band): inside window ends at j, outside
    # starts at j.
    js = np.arange(win, offsets.size - win)
    robust = windows[:, js - win] - windows[:, js]
    # The medians' step is flat wherever the windows' boundary lies within a stroke's width
    # of a clean edge; the means' step peaks exactly at it. Their minimum is both robust to
    # print and sharp.
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(np.clip(f, -0.5, 1.5), axis=1)], axis=1)
    means = (c[:, win:] - c[:, :-win]) / win
    resp = np.minimum(robust, means[:, js - win] - means[:, js])
    resp = np.nan_to_num(resp, nan=0.0)
    peak = (resp[:, 1:-1] >= resp[:, :-2]) & (resp[:, 1:-1] > resp[:, 2:])
    peak &= resp[:, 1:-1] >= s.min_step
    cand_r = np.where(peak, resp[:, 1:-1], 0.0)
    k = min(s.candidates, cand_r.shape[1])
    top = np.argsort(-cand_r, axis=1)[:, :k]
    strength = np.take_along_axis(cand_r, top, axis=1)  # (n, k), 0 = no candidate
    if (strength > 0).any(axis=1).sum() < max(3, s.min_support * n):
        return None
    j = js[top + 1]  # index into offsets
    pos = _subpixel(f, j, offsets)
    bound = band + 0.5
    strength = np.where(np.abs(pos) <= bound, strength, 0.0)
    coef = _ransac(
        ts,
        pos,
        strength,
        paperish=windows,
        offsets=offsets,
        win=win,
        length=side.length,
        rng=rng,
        s=s,
    )
    if coef is None:
        return None
    coef, count = _refit(ts, pos, strength, coef=coef, length=side.length, s=s)
    if count < s.min_support * n:
        return None
    curve = _design(ts) @ coef
    if np.abs(curve).max() > 2 * bound:  # only its ends may leave the band
        return None
    return coef, count / n


def _subpixel(f: np.ndarray, j: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Offsets of the steepest fall of `f` near each candidate index `j` (n, k)."""
    grad = np.zeros_like(f)
    grad[:, 1:-1] = (f[:, :-2] - f[:, 2:]) / 2  # paper to surface: positive outward
    grad = np.nan_to_num(grad, nan=0.0)
    rows = np.arange(f.shape[0])[:, None]
    m = f.shape[1]
    best = j.copy()
    best_g = np.full(j.shape, -np.inf)
    for dj in (-2, -1, 0, 1):  # the window edge sits at the step's outer half
        jj = np.clip(j + dj, 1, m - 2)
        gj = grad[rows, jj]
        better = gj > best_g
        best = np.where(better, jj, best)
        best_g = np.where(better, gj, best_g)
    best = np.clip(best, 1, m - 2)
    g0, g1, g2 = grad[rows, best - 1], grad[rows, best], grad[rows, best + 1]
    denom = g0 - 2 * g1 + g2
    shift = np.where(denom < -1e-9, 0.5 * (g0 - g2) / np.where(denom < -1e-9, denom, -1), 0.0)
    return np.asarray(offsets[best] + np.clip(shift, -0.5, 0.5))


def _design(ts: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(ts), ts, np.sin(np.pi * ts)], axis=-1)


def _ransac(
    ts: np.ndarray,
    pos: np.ndarray,
    strength: np.ndarray,
    *,
    paperish: np.ndarray,
    offsets: np.ndarray,
    win: int,
    length: float,
    rng: np.random.Generator,
    s: RefineSettings,
) -> np.ndarray | None:
    """The curve through candidate triples (one from each third) that explains most response."""
    n, k = pos.shape
    thirds = np.array_split(np.arange(n), 3)
    picks = []
    for part in thirds:
        valid = [(i, c) for i in part for c in range(k) if strength[i, c] > 0]
        if not valid:
            return None
        idx = rng.integers(0, len(valid), s.hypotheses)
        picks.append(np.array(valid)[idx])
    rows = np.stack([p[:, 0] for p in picks], axis=1)  # (H, 3)
    cols = np.stack([p[:, 1] for p in picks], axis=1)
    a = _design(ts[rows])  # (H, 3, 3)
    d = pos[rows, cols]
    solvable = np.abs(np.linalg.det(a)) > 1e-6
    coef = np.zeros((s.hypotheses, 3))
    coef[solvable] = np.linalg.solve(a[solvable], d[solvable][..., None])[..., 0]
    sane = solvable & (np.abs(coef[:, 2]) <= s.max_bow * length)
    if not sane.any():
        return None
    coef = coef[sane]
    curve = coef @ _design(ts).T  # (H, n)
    near = np.abs(pos[None, :, :] - curve[:, :, None]) <= s.tolerance  # (H, n, k)
    score = (np.where(near, strength[None], 0.0).max(axis=2)).sum(axis=1)
    # Paper lies just inside the paper's edge all along it; a row of a checkered cloth or the
    # far side of a second receipt has surface inside it on part of its length.
    idx = np.clip(
        np.floor(curve - offsets[0] + 0.5).astype(np.int64) - win, 0, paperish.shape[1] - 1
    )
    inside = paperish[np.arange(n)[None, :], idx]  # (H, n), NaN off the frame
    seen = np.isfinite(inside).sum(axis=1)
    papery = np.where(np.isfinite(inside), inside >= s.inside_level, False).sum(axis=1)
    score = score * (papery / np.maximum(seen, 1)) ** 2
    best = int(np.argmax(score))
    return np.asarray(coef[best])


def _refit(
    ts: np.ndarray,
    pos: np.ndarray,
    strength: np.ndarray,
    *,
    coef: np.ndarray,
    length: float,
    s: RefineSettings,
) -> tuple[np.ndarray, int]:
    """Weighted least squares on the candidates near the curve, twice; (coef, supporters)."""
    design = _design(ts)
    count = 0
    for tol in (s.tolerance * 1.5, s.tolerance):
        curve = design @ coef
        dist = np.abs(pos - curve[:, None])
        dist = np.where(strength > 0, dist, np.inf)
        pick = np.argmin(dist, axis=1)
        rows = np.arange(ts.size)
        use = dist[rows, pick] <= tol
        count = int(use.sum())
        if count < 4:
            return coef, count
        wgt = np.sqrt(strength[rows, pick][use])
        a = design[use] * wgt[:, None]
        b = pos[rows, pick][use] * wgt
        # Damp the bow: a straight side stays straight unless its points say otherwise.
        damp = np.array([[0.0, 0.0, 0.5 * np.sqrt(wgt.sum() / max(length, 1.0))]])
        a = np.vstack([a, damp])
        b = np.append(b, 0.0)
        new, *_ = np.linalg.lstsq(a, b, rcond=None)
        if abs(new[2]) > s.max_bow * length:
            return coef, count
        coef = new
    return coef, count


def _corners(sides: list[_Side], coefs: list[np.ndarray]) -> np.ndarray | None:
    """Where consecutive fitted curves meet: corner i ends side i-1 and starts side i."""
    out = np.zeros((4, 2))
    for i in range(4):
        prev, cur = sides[i - 1], sides[i]
        cp, cc = coefs[i - 1], coefs[i]
        sp, sc = 1.0, 0.0
        x = cur.point(0.0, cc)
        for _ in range(4):
            p0, p1 = prev.point(sp, cp), cur.point(sc, cc)
            d0, d1 = prev.tangent(sp, cp), cur.tangent(sc, cc)
            m = np.array([d0, -d1]).T
            if abs(np.linalg.det(m)) < 1e-9:
                return None
            k = np.linalg.solve(m, p1 - p0)
            x = p0 + k[0] * d0
            sp = float(np.dot(x - prev.start, prev.along) / prev.length)
            sc = float(np.dot(x - cur.start, cur.along) / cur.length)
        out[i] = x
    return out


def _angles(q: np.ndarray) -> np.ndarray:
    prev = np.roll(q, 1, axis=0) - q
    nxt = np.roll(q, -1, axis=0) - q
    cos = (prev * nxt).sum(axis=1) / (
        np.linalg.norm(prev, axis=1) * np.linalg.norm(nxt, axis=1) + 1e-9
    )
    return np.asarray(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _convex(q: np.ndarray) -> bool:
    e = np.roll(q, -1, axis=0) - q
    cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    return bool((cross > 0).all() or (cross < 0).all())


def _acceptable(q: np.ndarray, coarse: np.ndarray, diag: float, s: RefineSettings) -> bool:
    if not np.isfinite(q).all() or not _convex(q):
        return False
    if np.linalg.norm(q - coarse, axis=1).max() > s.max_move * diag:
        return False
    angles = _angles(q)
    low, high = s.angle_range
    if angles.min() < low or angles.max() > high:
        return False
    if np.abs(angles - _angles(coarse)).max() > s.max_turn:
        return False
    area, before = _area(q), _area(coarse)
    return abs(area - before) <= s.max_area_change * before


def _checked_quad(
    coarse: np.ndarray,
    sides: list[_Side],
    coefs: list[np.ndarray],
    *,
    support: list[float],
    diag: float,
    s: RefineSettings,
) -> np.ndarray:
    """The refined corners, giving sides back their coarse line, weakest first, until sane."""
    coefs = list(coefs)
    support = list(support)
    while any(v > 0 for v in support):
        q = _corners(sides, coefs)
        if q is not None and _acceptable(q, coarse, diag, s):
            return q
        weakest = min((v, i) for i, v in enumerate(support) if v > 0)[1]
        coefs[weakest] = np.zeros(3)
        support[weakest] = 0.0
    return coarse
