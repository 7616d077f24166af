"""Text-line detector scoring (no TensorFlow): a page's core map from any runner (Keras,
PyTorch, a .tflite) and F1 at IoU 0.5 of the boxes the engine would read from it, so the Keras
trainer, the PyTorch mirror (`models.training.torch_detector`) and the export score alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.litert.textmap import (
    DEFAULT_GROWTH,
    DetectionScore,
    Growth,
    boxes_from_map,
    calibrate_growth,
    match_boxes,
    merge_row_pieces,
    prepare_page,
)
from models.ocr.litert import LiteRTConfig
from models.training.detector_data import Page

#: A page's core probability map and the page's scale to it (`core_map`).
CoreMap = tuple[np.ndarray, float]


def core_map(
    run: Callable[[np.ndarray], np.ndarray], page: Page, target_width: int, max_side: int
) -> CoreMap:
    """The core probability map of one page (a model function [1,H,W,1] -> [1,H,W,1]) and the
    page's scale to the map."""
    img, ps = prepare_page(page.gray, target_width, max_side)
    return run(img[None, :, :, None])[0, :, :, 0], ps.scale


def detect(core: CoreMap, growth: Growth = DEFAULT_GROWTH) -> list[Any]:
    """Predicted quads of one page (its pixels) from its core map, with the engine's
    post-processing (`models.ocr.litert.LiteRTConfig`'s core threshold, least core score and
    row-piece merging), so epochs are chosen, and exports scored, on the boxes the scanner
    will read."""
    prob, scale = core
    post = LiteRTConfig()
    found = boxes_from_map(
        prob,
        scale,
        threshold=post.detector_threshold,
        min_score=post.detector_min_score,
        growth=growth,
    )
    return [b.quad for b in merge_row_pieces(found, post.merge_gap)]


def score_maps(
    cores: list[CoreMap], pages: list[Page], growth: Growth = DEFAULT_GROWTH
) -> dict[str, float]:
    """Precision, recall and F1 at IoU 0.5 summed over pages, from their core maps."""
    total = DetectionScore(0, 0, 0)
    for core, page in zip(cores, pages, strict=True):
        truth = [((x0, y0), (x1, y0), (x1, y1), (x0, y1)) for x0, y0, x1, y1 in page.boxes]
        total = total + match_boxes(detect(core, growth), truth)
    return {
        "f1": total.f1,
        "precision": total.precision,
        "recall": total.recall,
        "pages": float(len(pages)),
    }


def dev_score(cores: list[CoreMap], pages: list[Page]) -> dict[str, float]:
    """`score_maps` with the boxes grown back as this model's cores need, measured on the same
    held-out pages (as export calibrates the shipped model) rather than by the target's inverse:
    a trained model's cores come out thicker than its targets. Two medians fitted on the pages
    scored; that is how epochs and warm starts are compared."""
    growth = calibrate_growth([(*core, p.boxes) for core, p in zip(cores, pages, strict=True)])
    return score_maps(cores, pages, growth)
