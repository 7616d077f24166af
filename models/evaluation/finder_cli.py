"""`receipts eval finder`: every receipt finder on the same held-out synthetic countertop photos.

The frames are the finder's test set (`models.training.finder.TEST_SEED`, seeds never drawn in
training): receipts on wood, stone, trays and cloths with perspective, curl, shadows and blur,
plus empty countertops. Each finder (`contour`, the classical outline search, and `litert`, the
trained corner model) sees the full frame; scores: mean IoU of the found quad with the true one,
mean corner error as a share of the receipt's diagonal, receipts missed, quads reported on empty
countertops, and median milliseconds per frame on one thread.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click
import numpy as np

from models.document import ContourFinder, ReceiptFinder
from models.litert.corners import FinderScore
from models.synth import generate_empty, generate_receipt

#: The finder's test seeds (models/training/finder.py); training never draws them.
TEST_SEED = 5 * 10**12
RENDER_SIZE = (768, 1024)
FINDER_NAMES = ("contour", "litert")


def held_out_frames(
    receipts: int, empties: int, size: tuple[int, int] = RENDER_SIZE
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(BGR frame, true corners or None) for the test seeds: receipts first, then empties."""
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for k in range(receipts + empties):
        seed = TEST_SEED + k
        sample = generate_empty(seed, size) if k >= receipts else generate_receipt(seed, size)
        corners = sample.label.corners
        bgr = np.ascontiguousarray(sample.image[:, :, ::-1])
        out.append((bgr, None if corners is None else np.asarray(corners, np.float32)))
    return out


def score_finder(
    finder: ReceiptFinder, frames: list[tuple[np.ndarray, np.ndarray | None]]
) -> dict[str, float]:
    """FinderScore summary plus the median ms per frame."""
    score = FinderScore([], [])
    times = []
    for image, truth in frames:
        t0 = time.perf_counter()
        found = finder.find(image)
        times.append((time.perf_counter() - t0) * 1000)
        score.add(None if found is None else found.quad, None if truth is None else truth.tolist())
    return score.summary() | {"median_ms": statistics.median(times)}


def _finder(name: str, model_dir: Path | None) -> ReceiptFinder:
    if name == "contour":
        return ContourFinder()
    from models.litert.finder import LiteRTFinder
    from models.ocr.litert import ARTIFACTS

    return LiteRTFinder(model_dir or ARTIFACTS)


@click.command("finder")
@click.option("--finders", default="contour,litert", show_default=True, help="Comma-separated.")
@click.option("--receipts", default=200, show_default=True, type=click.IntRange(1))
@click.option("--empties", default=100, show_default=True, type=click.IntRange(0))
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model folder of the litert finder (default models/artifacts).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def finder_command(
    finders: str, receipts: int, empties: int, model_dir: Path | None, as_json: bool
) -> None:
    """Receipt finders on held-out synthetic countertop photos: IoU, corner error, misses."""
    names = [n.strip() for n in finders.split(",") if n.strip()]
    unknown = set(names) - set(FINDER_NAMES)
    if unknown:
        raise click.BadParameter(f"unknown finder(s) {sorted(unknown)}; known: {FINDER_NAMES}")
    frames = held_out_frames(receipts, empties)
    results: dict[str, dict[str, float]] = {}
    for name in names:
        try:
            finder = _finder(name, model_dir)
        except Exception as exc:  # a missing model or runtime: say so, score the others
            click.echo(f"{name}: unavailable ({exc})", err=True)
            continue
        results[name] = score_finder(finder, frames)
    if as_json:
        click.echo(json.dumps(results, indent=1))
        return
    click.echo(
        f"{'finder':<9} {'mean IoU':>9} {'corner err %':>13} {'missed':>7} "
        f"{'false quads':>12} {'ms/frame':>9}"
    )
    for name, r in results.items():
        click.echo(
            f"{name:<9} {r['mean_iou']:>9.3f} {100 * r['mean_corner_error']:>13.2f} "
            f"{int(r['missed']):>4}/{int(r['receipts']):<3}"
            f"{int(r['false_quads']):>8}/{int(r['empties']):<3} {r['median_ms']:>9.1f}"
        )
