"""Line recognition on ground-truth line boxes: the same crops and scoring for every engine.

Each line box of a receipt is cut out of the scan as an upright grey crop at the scan's own
resolution (with a margin of 10 % of its height, as the recognizer is trained), and every engine
reads the very same crops through `OcrEngine.recognize_crops`. Texts are compared after NFC,
whitespace folding and upper-casing (SROIE transcripts are upper-case): character error rate
is the summed edit distance over the summed reference length; exact match is the share of lines
read exactly. Time is the engine's wall time per receipt (all its crops), crops excluded.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.document.rectify import LINE_PAD, crop_quad
from models.evaluation.sroie import Sample
from models.ocr.base import OcrEngine
from models.receipt import OcrLine
from models.training.metrics import edit_distance


def normalize_text(text: str) -> str:
    """The form both sides are compared in: NFC, single spaces, upper case."""
    return " ".join(unicodedata.normalize("NFC", text).split()).upper()


@dataclass(frozen=True)
class ReceiptCrops:
    """One receipt's line crops (grey uint8) and their reference texts."""

    id: str
    crops: list[np.ndarray]
    texts: list[str]


def receipt_crops(sample: Sample) -> ReceiptCrops:
    """The crops of every non-empty ground-truth line of a SROIE sample."""
    if sample.image_path is None:
        raise ValueError(f"receipt {sample.id} has no image under img/")
    gray = cv2.imread(str(sample.image_path), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read the image {sample.image_path}")
    lines: list[OcrLine] = [ln for ln in sample.lines() if normalize_text(ln.text)]
    return ReceiptCrops(
        sample.id,
        [crop_quad(gray, ln.box, LINE_PAD) for ln in lines],
        [ln.text for ln in lines],
    )


@dataclass
class LineScore:
    """Summed counts over lines; `cer` and `exact` derive from them."""

    lines: int = 0
    chars: int = 0
    errors: int = 0
    exact_lines: int = 0

    def add(self, prediction: str, truth: str) -> None:
        p, t = normalize_text(prediction), normalize_text(truth)
        self.lines += 1
        self.chars += len(t)
        self.errors += edit_distance(p, t)
        self.exact_lines += p == t

    @property
    def cer(self) -> float:
        return self.errors / max(self.chars, 1)

    @property
    def exact(self) -> float:
        return self.exact_lines / max(self.lines, 1)


def score_lines(predictions: list[str], truths: list[str]) -> LineScore:
    """Case-insensitive CER and exact match of predictions against truths (same length)."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} reference lines")
    score = LineScore()
    for p, t in zip(predictions, truths, strict=True):
        score.add(p, t)
    return score


@dataclass
class EngineRun:
    """One engine's results over the receipts."""

    engine: str
    version: str
    score: LineScore = field(default_factory=LineScore)
    seconds: list[float] = field(default_factory=list)
    worst: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def receipts(self) -> int:
        return len(self.seconds)

    @property
    def seconds_per_receipt(self) -> float:
        return sum(self.seconds) / max(len(self.seconds), 1)

    def summary(self) -> dict[str, float | int | str]:
        return {
            "engine": self.engine,
            "version": self.version,
            "receipts": self.receipts,
            "lines": self.score.lines,
            "chars": self.score.chars,
            "cer": round(self.score.cer, 5),
            "exact": round(self.score.exact, 5),
            "seconds_per_receipt": round(self.seconds_per_receipt, 4),
            "median_seconds_per_receipt": round(float(np.median(self.seconds)), 4)
            if self.seconds
            else 0.0,
        }


def run_engine(
    engine: OcrEngine, receipts: Iterable[ReceiptCrops], keep_worst: int = 0
) -> EngineRun:
    """Read every receipt's crops with `engine`, timing each receipt, and score the lines."""
    run = EngineRun(engine.name, engine.version)
    wrong: list[tuple[int, str, str, str]] = []
    for receipt in receipts:
        start = time.perf_counter()
        results = engine.recognize_crops(receipt.crops)
        run.seconds.append(time.perf_counter() - start)
        for (text, _), truth in zip(results, receipt.texts, strict=True):
            run.score.add(text, truth)
            if keep_worst:
                d = edit_distance(normalize_text(text), normalize_text(truth))
                if d:
                    wrong.append((d, receipt.id, text, truth))
    wrong.sort(key=lambda w: -w[0])
    run.worst = [(rid, got, want) for _, rid, got, want in wrong[:keep_worst]]
    return run
