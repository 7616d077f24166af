"""Recognizer decoding and scoring (no TensorFlow): greedy CTC with confidences, CER, and
reading a set of line crops with any runner (Keras, PyTorch, a .tflite)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.ocr.ctc import greedy_path, softmax
from models.training.charset import Charset
from models.training.data import WIDTH_STRIDE, make_batch


def greedy_decode(logits: np.ndarray, charset: Charset) -> tuple[str, list[float]]:
    """Text of a line's logits [T, C] and each character's confidence (best step's probability):
    the engine's own greedy decoding (`models.ocr.ctc`), so training scores what ships."""
    classes, confs = greedy_path(softmax(logits))
    return charset.decode(classes), confs


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(predictions: list[str], truths: list[str]) -> float:
    """Total edit distance over total reference length."""
    total = sum(len(t) for t in truths)
    errors = sum(edit_distance(p, t) for p, t in zip(predictions, truths, strict=True))
    return errors / max(total, 1)


def predict(
    run: Callable[[np.ndarray], np.ndarray],
    lines: list[tuple[np.ndarray, str]],
    charset: Charset,
    batch: int = 1,
) -> list[str]:
    """Greedy-decoded texts of lines. batch=1 runs each at its own width, as the device's
    single-line path does; a larger batch groups lines of similar width (padded right with
    their last column, as `models.ocr.litert` does) and decodes each from its own time steps."""
    out: dict[int, str] = {}
    order = sorted(range(len(lines)), key=lambda k: lines[k][0].shape[1])
    for start in range(0, len(order), batch):
        group = order[start : start + batch]
        b = make_batch([(lines[k][0], "x") for k in group], charset)
        logits = run(b.images)
        for row, k in enumerate(group):
            steps = -(-lines[k][0].shape[1] // WIDTH_STRIDE)
            out[k] = greedy_decode(logits[row, :steps], charset)[0]
    return [out[k] for k in range(len(lines))]


def score(predictions: list[str], truths: list[str], case_insensitive: bool) -> dict[str, float]:
    """CER (edit distance over reference length, summed) and line exact match."""
    if case_insensitive:
        predictions = [p.upper() for p in predictions]
        truths = [t.upper() for t in truths]
    return {
        "cer": cer(predictions, truths),
        "exact": float(np.mean([p == t for p, t in zip(predictions, truths, strict=True)]))
        if truths
        else 0.0,
        "lines": float(len(truths)),
    }
