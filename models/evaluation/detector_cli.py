"""`receipts eval detector`: the text-line detector's F1 on SROIE pages, and where it is lost.

Two sets of boxes are scored on each SROIE scan, from one run of the detector:

- the *lines*: the boxes of the lines the engine returns (`LiteRTEngine.read_lines`), the
  detector's boxes that the recognizer read as text (`models.ocr.litert.is_text_line`: rules,
  blots and logo fragments dropped). These are the scanner's text lines, and the headline;
- the *detector's* boxes (`LiteRTEngine.find_lines`: after its core threshold, least score and
  row-piece merging), before any reading.

Each is matched one to one at IoU 0.5 with the box files' lines
(`models.litert.textmap.matched_pairs`). Every true box left unmatched is sorted by what covers
it (`Coverage`):

- *merged*: one found box covers most of it and most of another true box too (SROIE sets a
  colon, a quantity or a price apart from its neighbour where our box runs on);
- *split*: two or more found boxes share it;
- *missed*: nothing covers it (faint or one-character boxes);
- *extent*: one found box covers it alone but is too long, short or thin for IoU 0.5;

and every found box left unmatched that lies on no true box is *spurious* (a logo, a stamp,
text the box files leave out). Short boxes (one or two characters: '1', ':', 'SR') are
counted apart, since they are most of the loss.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click
import cv2
import numpy as np

from models.evaluation.sroie import SPLIT_FILE, Sample, load_split, samples
from models.litert.textmap import DetectionScore, matched_pairs
from models.litert.textmap import Quad as FoundQuad
from models.receipt import OcrLine

#: A found box "covers" a true one when it holds more than this share of the true box's area.
COVERS = 0.3
#: ...and a merged box holds more than this share of the other true box.
HOLDS_OTHER = 0.5
#: True boxes of at most this many characters count as short.
SHORT_CHARS = 2

CATEGORIES = ("merged", "split", "missed", "extent")

Quad = Sequence[Sequence[float]]


class LineFinder(Protocol):
    """What is scored: an engine's found boxes on a grey page and the lines it reads from them
    (`LiteRTEngine.find_lines`, `LiteRTEngine.read_boxes`)."""

    def find_lines(self, gray: np.ndarray) -> list[FoundQuad]: ...

    def read_boxes(self, gray: np.ndarray, quads: list[FoundQuad]) -> list[OcrLine]: ...


def _area(q: Quad) -> float:
    return abs(float(cv2.contourArea(np.asarray(q, np.float32))))


def _inter(a: Quad, b: Quad) -> float:
    area, _ = cv2.intersectConvexConvex(np.asarray(a, np.float32), np.asarray(b, np.float32))
    return float(area)


@dataclass
class Coverage:
    """Matched boxes and the unmatched ones by category, summed over pages."""

    score: DetectionScore = field(default_factory=lambda: DetectionScore(0, 0, 0))
    truth: Counter[str] = field(default_factory=Counter)  # category -> unmatched true boxes
    short: Counter[str] = field(default_factory=Counter)  # ... of them short
    spurious: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (page, category, text)

    def add(
        self, page: str, predicted: Sequence[Quad], truth: Sequence[Quad], texts: Sequence[str]
    ) -> None:
        """Score one page: `truth` and `texts` are its true boxes and their transcripts."""
        pairs = matched_pairs(predicted, truth)
        self.score = self.score + DetectionScore(len(pairs), len(predicted), len(truth))
        found = {i for i, _ in pairs}
        matched = {j for _, j in pairs}
        for j in range(len(truth)):
            if j in matched:
                continue
            category = classify(predicted, truth, j)
            self.truth[category] += 1
            if len(texts[j].strip()) <= SHORT_CHARS:
                self.short[category] += 1
            self.examples.append((page, category, texts[j]))
        for i, p in enumerate(predicted):
            area = max(_area(p), 1.0)
            if i not in found and all(_inter(p, t) / area < COVERS for t in truth):
                self.spurious += 1

    def figures(self) -> dict[str, object]:
        s = self.score
        return {
            "f1": s.f1,
            "precision": s.precision,
            "recall": s.recall,
            "predicted": s.predicted,
            "truth": s.truth,
            "unmatched_truth": {c: self.truth[c] for c in CATEGORIES},
            "unmatched_short_truth": {c: self.short[c] for c in CATEGORIES},
            "spurious_predicted": self.spurious,
        }


def classify(predicted: Sequence[Quad], truth: Sequence[Quad], index: int) -> str:
    """Why true box `truth[index]` found no match: one of `CATEGORIES`."""
    box = truth[index]
    area = max(_area(box), 1.0)
    covering = [p for p in predicted if _inter(p, box) / area > COVERS]
    if not covering:
        return "missed"
    if len(covering) > 1:
        return "split"
    cover = covering[0]
    for k, other in enumerate(truth):
        if k != index and _inter(cover, other) / max(_area(other), 1.0) > HOLDS_OTHER:
            return "merged"
    return "extent"


@dataclass
class PageScores:
    """The lines read and the detector's boxes, each scored against the box files."""

    lines: Coverage = field(default_factory=Coverage)
    detector: Coverage = field(default_factory=Coverage)


def score_pages(
    engine: LineFinder, cases: Sequence[Sample], log: Callable[[str], None]
) -> PageScores:
    """The engine's boxes on each sample's scan against its box file (`log` names a sample
    without a readable image, which is skipped)."""
    scores = PageScores()
    for sample in cases:
        gray = None if sample.image_path is None else cv2.imread(str(sample.image_path), 0)
        if gray is None:
            log(f"{sample.id}: no readable image; skipped")
            continue
        true_lines = sample.lines()
        truth = [ln.box for ln in true_lines]
        texts = [ln.text for ln in true_lines]
        found = engine.find_lines(gray)
        scores.detector.add(sample.id, found, truth, texts)
        scores.lines.add(sample.id, [ln.box for ln in engine.read_boxes(gray, found)], truth, texts)
    return scores


@click.command("detector")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=lambda: os.environ.get("RM_SROIE_DIR", "../shared/datasets/sroie-train"),
    show_default="$RM_SROIE_DIR or ../shared/datasets/sroie-train",
    help="SROIE-layout folder with box/, key/ and img/.",
)
@click.option("--split", "split_name", type=click.Choice(["val", "train"]), default="val")
@click.option(
    "--split-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=SPLIT_FILE,
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N receipts of the split.")
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The model folder (default models/artifacts).",
)
@click.option(
    "--errors",
    is_flag=True,
    help="List each true box the lines read leave unmatched (allowed on --split train only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def detector_command(  # noqa: PLR0917
    data: Path,
    split_name: str,
    split_file: Path,
    limit: int | None,
    model_dir: Path | None,
    errors: bool,
    as_json: bool,
) -> None:
    """The text lines' F1 at IoU 0.5 on SROIE pages (the lines read, and the detector's boxes
    before reading), and where the misses come from."""
    from models.ocr.litert import ARTIFACTS, LiteRTConfig, LiteRTEngine

    if errors and split_name != "train":
        raise click.BadParameter("--errors lists boxes of the train split only (val stays unseen)")
    ids = load_split(split_file)[split_name][:limit]
    engine = LiteRTEngine(LiteRTConfig(model_dir=model_dir or ARTIFACTS), threads=1)
    scores = score_pages(engine, samples(data, ids), lambda m: click.echo(m, err=True))
    if as_json:
        figures = {"lines": scores.lines.figures(), "detector": scores.detector.figures()}
        click.echo(json.dumps(figures, indent=1))
    else:
        click.echo(f"SROIE {split_name}, {len(ids)} receipts")
        for title, coverage in (("lines read", scores.lines), ("detector boxes", scores.detector)):
            s = coverage.score
            click.echo(
                f"{title}: F1 {s.f1:.4f} (P {s.precision:.4f}, R {s.recall:.4f}; "
                f"{s.predicted} found, {s.truth} true)"
            )
            click.echo("  unmatched true boxes (short = at most 2 characters):")
            for c in CATEGORIES:
                click.echo(f"    {c:<8} {coverage.truth[c]:>5}  (short {coverage.short[c]})")
            click.echo(f"  found boxes on no true box: {coverage.spurious}")
    if errors:
        for page, category, text in scores.lines.examples:
            click.echo(f"{page} {category}: {text!r}")
