"""The learned header reader: merchant and address chosen among runs of the top lines.

Every contiguous run of the top lines (up to NAME_MAX lines for the name, ADDRESS_MAX for the
address) is a candidate. A run's features are its first line's, its last line's (each with its
neighbours, so the run's edges are seen) and the mean of its lines' `header_features` (the
rules' scores and choices among them), plus its length and how it overlaps the rules' run. A
linear scorer per field (`merchant`, `address` in `line_models.json`, a conditional logit over
a receipt's runs) ranks them; the merchant is the best run near the top and the address the
best run after it. Without the table the rules' answer stands.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from models.extraction.address import printed
from models.extraction.header_features import address_value, header_features, name_text, top_lines
from models.extraction.layout import Line, Page
from models.extraction.linear import LineModels, Matrix

#: The merchant's run starts among this many top lines and has at most NAME_MAX lines.
NAME_WINDOW = 8
NAME_MAX = 4
ADDRESS_MAX = 6
_RUN_EXTRA = ("len1", "len2", "len3", "len4plus", "is_rule", "rule_share", "covers_rule")


def span_names(line_names: tuple[str, ...]) -> tuple[str, ...]:
    return (
        *(f"first_{n}" for n in line_names),
        *(f"last_{n}" for n in line_names),
        *(f"mean_{n}" for n in line_names),
        *_RUN_EXTRA,
    )


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    lines: list[int]
    confidence: float


@dataclass(frozen=True)
class Runs:
    """Candidate runs [start, end) of the top lines and their feature rows."""

    starts: np.ndarray
    ends: np.ndarray
    rows: Matrix


def candidate_runs(
    rows: Matrix, lo: int, hi: int, max_len: int, rule: Collection[int]
) -> Runs | None:
    """The runs starting in [lo, hi) (ending before len(rows)), with their features.

    `rule` holds the indices (into rows) of the lines the rules chose for this field.
    """
    n = rows.shape[0]
    pairs = [(s, e) for s in range(lo, min(hi, n)) for e in range(s + 1, min(s + max_len, n) + 1)]
    if not pairs:
        return None
    starts = np.array([p[0] for p in pairs])
    ends = np.array([p[1] for p in pairs])
    cum = np.vstack([np.zeros((1, rows.shape[1])), np.cumsum(rows, axis=0)])
    lengths = (ends - starts).astype(np.float64)
    means = (cum[ends] - cum[starts]) / lengths[:, None]
    mask = np.zeros(n + 1)
    for i in rule:
        mask[i + 1] = 1.0
    in_rule = np.cumsum(mask)[ends] - np.cumsum(mask)[starts]
    n_rule = float(len(rule))
    rule_lo, rule_hi = (min(rule), max(rule) + 1) if rule else (-1, -1)
    extra = np.column_stack(
        [
            lengths == 1,
            lengths == 2,
            lengths == 3,
            lengths >= 4,
            (starts == rule_lo) & (ends == rule_hi),
            in_rule / lengths,
            in_rule / n_rule if n_rule else np.zeros(len(pairs)),
        ]
    ).astype(np.float64)
    return Runs(starts, ends, np.hstack([rows[starts], rows[ends - 1], means, extra]))


def _pick(scores: Matrix) -> tuple[int, float]:
    best = int(np.argmax(scores))
    shifted = np.exp(scores - scores[best])
    return best, float(1.0 / shifted.sum())


def _indices(lines: list[Line], ids: Collection[int]) -> list[int]:
    return [k for k, ln in enumerate(lines) if ln.id in ids]


def read_header(
    page: Page, models: LineModels, rule_name: list[int], rule_address: list[int]
) -> tuple[Found | None, Found | None]:
    """The merchant and the address the scorers choose; None for a field without a scorer."""
    name_model, address_model = models.get("merchant"), models.get("address")
    lines = top_lines(page)
    if (name_model is None and address_model is None) or not lines:
        return None, None
    rows = header_features(page, lines, set(rule_name), set(rule_address))
    merchant = None
    end = max(_indices(lines, rule_name), default=-1) + 1
    runs = candidate_runs(rows, 0, NAME_WINDOW, NAME_MAX, _indices(lines, rule_name))
    if name_model is not None and runs is not None:
        best, prob = _pick(name_model.logits(runs.rows))
        start, end = int(runs.starts[best]), int(runs.ends[best])
        run = lines[start:end]
        merchant = Found(name_text(run), [ln.id for ln in run], round(prob, 3))
    runs = candidate_runs(rows, end, len(lines), ADDRESS_MAX, _indices(lines, rule_address))
    if address_model is None or runs is None:
        return merchant, None
    best, prob = _pick(address_model.logits(runs.rows))
    run = printed(lines[int(runs.starts[best]) : int(runs.ends[best])])
    return merchant, Found(address_value(run), [ln.id for ln in run], round(prob, 3))
