"""k-fold cross-validation of the whole extractor on the SROIE train split (never val).

Each receipt of the train split is read by an extractor whose learned parts never saw it:
fold k's learned header scorers are fitted on the other folds, and its confidence
calibration on the *held-out* raw confidences of the other folds (pass 1 reads every receipt
with its fold's scorers and no calibration; pass 2 reads it again calibrated). The figures are
therefore honest estimates for unseen receipts, and the same out-of-fold pairs are what
`receipts eval calibrate` fits the committed table on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.evaluation.learn import HeaderExample, fit_header, header_example
from models.evaluation.scoring import ReceiptScore, score_receipt
from models.evaluation.shops import round_robin_folds
from models.extraction import Extraction, extract_fields
from models.extraction.calibration import CALIBRATED, Calibration, fit_isotonic
from models.extraction.linear import LineModels
from models.receipt import OcrLine

#: The scoring name of each calibrated field.
SCORED_AS = {"merchant": "company", "address": "address", "date": "date", "total": "total"}

Pairs = dict[str, list[tuple[float, bool]]]


@dataclass(frozen=True, slots=True)
class Labelled:
    """One train receipt: its id, its lines (loaded on demand) and its answer key."""

    id: str
    key: dict[str, str]
    lines: Callable[[], list[OcrLine]]


@dataclass(frozen=True)
class FoldResult:
    """Out-of-fold scores and extractions (in the order of the receipts) and the raw pairs."""

    scores: list[ReceiptScore]
    extractions: list[Extraction]
    pairs: Pairs


def fold_models(
    examples_by_fold: Sequence[Sequence[HeaderExample]], k: int, l2: float, keep: Sequence[str]
) -> LineModels:
    """The learned header scorers named in `keep`, fitted on every fold but k."""
    train = [e for j, fold in enumerate(examples_by_fold) if j != k for e in fold]
    fitted = fit_header(train, l2)
    return LineModels({name: m for name, m in fitted.items() if name in keep}, f"folds != {k}")


def pairs_of(score: ReceiptScore) -> Pairs:
    """(raw confidence, right) for each calibrated field the receipt has a value for."""
    out: Pairs = {name: [] for name in CALIBRATED}
    for name in CALIBRATED:
        r = score.fields.get(SCORED_AS[name])
        if r is not None and r.confidence is not None:
            out[name].append((r.confidence, r.correct))
    return out


def calibration_from(pairs: Pairs, source: str) -> Calibration:
    return Calibration({name: fit_isotonic(p) for name, p in pairs.items()}, source=source)


def cross_validate_extractor(
    receipts: Sequence[Labelled],
    folds: int,
    *,
    l2: float,
    keep: Sequence[str],
    assignment: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> FoldResult:
    """Read every receipt with the learned parts of the folds that exclude it (see module doc).

    `assignment` gives each receipt's fold (`models.evaluation.shops.grouped_folds` keeps a
    shop in one fold); by default receipt i is in fold i % folds.
    """
    n = len(receipts)
    fold_of = list(assignment) if assignment is not None else round_robin_folds(n, folds)
    if len(fold_of) != n or any(not 0 <= k < folds for k in fold_of):
        raise ValueError(f"the fold assignment must give each of {n} receipts a fold < {folds}")
    lines = [r.lines() for r in receipts]
    examples: list[list[HeaderExample]] = [[] for _ in range(folds)]
    if keep:
        for i, r in enumerate(receipts):
            examples[fold_of[i]].append(header_example(lines[i], r.key))
    models = [fold_models(examples, k, l2, keep) if keep else LineModels({}) for k in range(folds)]
    raw_pairs: list[Pairs] = []
    for i, r in enumerate(receipts):
        m = models[fold_of[i]]
        result = extract_fields(lines[i], calibration=None, models=m)
        raw_pairs.append(pairs_of(score_receipt(r.id, result.fields, r.key, result.needs_review)))
    if progress:
        progress(f"pass 1 (raw, out-of-fold scorers) done on {n} receipts")
    all_pairs: Pairs = {name: [] for name in CALIBRATED}
    for p in raw_pairs:
        for name in CALIBRATED:
            all_pairs[name].extend(p[name])
    scores: list[ReceiptScore | None] = [None] * n
    extractions: list[Extraction | None] = [None] * n
    for k in range(folds):
        others: Pairs = {name: [] for name in CALIBRATED}
        for i, p in enumerate(raw_pairs):
            if fold_of[i] != k:
                for name in CALIBRATED:
                    others[name].extend(p[name])
        calibration = calibration_from(others, f"folds != {k}")
        for i in (i for i in range(n) if fold_of[i] == k):
            result = extract_fields(lines[i], calibration=calibration, models=models[k])
            extractions[i] = result
            scores[i] = score_receipt(
                receipts[i].id, result.fields, receipts[i].key, result.needs_review
            )
    return FoldResult(
        [s for s in scores if s is not None], [e for e in extractions if e is not None], all_pairs
    )
