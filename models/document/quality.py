"""The quality gate: is this image good enough to trust what is read from it?

It measures the rectified receipt (sharpness as the variance of the Laplacian, brightness,
glare as the share of clipped pixels) and the finder's outcome (no receipt found, receipt cut off
by the frame's edge), and gives a `models.receipt.Quality` with the reasons it doubts the image.
A scanner asks for a rescan when `accepted` is false; the text is read either way.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.document.finder import Detection
from models.document.geometry import touched_edges
from models.receipt import Quality

#: Sharpness is measured on the receipt scaled down to at most this width, so that it does not
#: depend on the camera's resolution.
SHARPNESS_WIDTH = 800
#: A grey level at or above this is clipped (glare, or blown-out paper).
CLIPPED = 250


class QualityThresholds(BaseModel):
    """Limits of the quality gate. Defaults set on the SROIE scans (all sharp enough) and on
    the same scans blurred (Gaussian sigma 2 px falls below `min_sharpness`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_sharpness: float = Field(
        default=40.0,
        ge=0,
        title="Minimum sharpness",
        description="Variance of the Laplacian of the grey receipt at most 800 px wide; "
        "sharp receipts measure 70 to 5000, motion or focus blur below 40.",
    )
    min_brightness: float = Field(
        default=60.0, ge=0, le=255, title="Minimum brightness", description="Mean grey, 0..255."
    )
    max_brightness: float = Field(
        default=245.0,
        ge=0,
        le=255,
        title="Maximum brightness",
        description="Mean grey, 0..255, for photos; a flat scan's white paper is not judged.",
    )
    max_glare: float = Field(
        default=0.08,
        ge=0,
        le=1,
        title="Maximum glare",
        description="Share of clipped pixels (grey >= 250) in a photographed receipt.",
    )
    edge_margin: float = Field(
        default=0.01,
        ge=0,
        le=0.2,
        title="Edge margin",
        description="A receipt corner this close to the frame's edge (share of the frame's "
        "size) means the receipt may be cut off.",
    )


def assess_quality(
    rectified: np.ndarray,
    thresholds: QualityThresholds | None = None,
    *,
    detection: Detection | None = None,
    frame_size: tuple[int, int] | None = None,
) -> Quality:
    """The gate's verdict on a rectified receipt (or on a whole frame where none was found).

    `frame_size` is the (width, height) of the photo the finder searched, with its `detection`;
    leave it None when no search was made (then `receipt_found` is None too).
    """
    t = thresholds or QualityThresholds()
    grey = rectified if rectified.ndim == 2 else cv2.cvtColor(rectified, cv2.COLOR_BGR2GRAY)
    sharpness = _sharpness(grey)
    brightness = float(grey.mean())
    glare = float((grey >= CLIPPED).mean())
    photo = detection is None or not detection.flat_scan
    reasons: list[str] = []
    if sharpness < t.min_sharpness:
        reasons.append(f"blurred: sharpness {sharpness:.0f} is below {t.min_sharpness:.0f}")
    if brightness < t.min_brightness:
        reasons.append(f"too dark: brightness {brightness:.0f} is below {t.min_brightness:.0f}")
    if photo and brightness > t.max_brightness:
        reasons.append(f"too bright: brightness {brightness:.0f} is above {t.max_brightness:.0f}")
    if photo and glare > t.max_glare:
        reasons.append(
            f"glare: {glare:.0%} of the receipt is blown out (at most {t.max_glare:.0%})"
        )
    receipt_found = None
    if frame_size is not None:
        receipt_found = detection is not None
        if detection is None:
            reasons.append("no receipt found in the photo; the whole frame was read")
        elif not detection.flat_scan:
            edges = touched_edges(detection.quad, *frame_size, margin=t.edge_margin)
            if edges:
                reasons.append(f"receipt may be cut off at the {_join(edges)} edge of the frame")
        if detection is not None and detection.others:
            n = len(detection.others)
            reasons.append(
                f"{n} other receipt{'s' if n > 1 else ''} in the photo; only the largest was "
                "read: scan each receipt on its own"
            )
    return Quality(
        accepted=not reasons,
        sharpness=round(sharpness, 2),
        brightness=round(brightness, 2),
        glare=round(glare, 4),
        receipt_found=receipt_found,
        reasons=reasons,
    )


def _sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian, on the image scaled to at most `SHARPNESS_WIDTH` wide."""
    height, width = grey.shape[:2]
    if width > SHARPNESS_WIDTH:
        size = (SHARPNESS_WIDTH, max(1, round(height * SHARPNESS_WIDTH / width)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
