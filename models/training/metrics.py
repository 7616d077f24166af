"""Recognizer decoding and scoring (no TensorFlow): greedy CTC with confidences, CER."""

from __future__ import annotations

import numpy as np

from models.training.charset import Charset


def greedy_decode(logits: np.ndarray, charset: Charset) -> tuple[str, list[float]]:
    """Text of a line's logits [T, C] and each character's confidence (best step's probability)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=-1, keepdims=True)
    best = probs.argmax(axis=-1)
    chars: list[int] = []
    confs: list[float] = []
    prev = -1
    for t, best_k in enumerate(best):
        k = int(best_k)
        if k not in (0, prev):
            chars.append(k)
            confs.append(float(probs[t, k]))
        elif k != 0:
            confs[-1] = max(confs[-1], float(probs[t, k]))
        prev = k
    return charset.decode(chars), confs


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
