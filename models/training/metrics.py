"""Recognizer decoding and scoring (no TensorFlow): greedy CTC with confidences, CER."""

from __future__ import annotations

import numpy as np

from models.ocr.ctc import greedy_path, softmax
from models.training.charset import Charset


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
