"""Fit the learned line scorers on labelled receipts: fuzzy line labels, logistic regression, CV.

Labels come from the answer keys by fuzzy matching, because keys carry typos: a top line
belongs to the merchant (address) when its cleaned text matches a stretch of the key's
company (address) with high similarity. The fit is L2-regularised logistic regression by
Newton's method, pure numpy. Cross-validation scores what the product is scored on: whether
the decoded merchant and address equal the keys as folded strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.evaluation.scoring import fold_text
from models.extraction.extract import rule_header
from models.extraction.header_features import (
    NAMES,
    address_value,
    header_features,
    name_text,
    top_lines,
)
from models.extraction.header_model import (
    ADDRESS_MAX,
    NAME_MAX,
    NAME_WINDOW,
    Runs,
    candidate_runs,
    span_names,
)
from models.extraction.layout import Line, Page, build_page
from models.extraction.linear import LinearModel, LineModels, Matrix
from models.receipt import OcrLine


def same_text(value: str, key: str) -> bool:
    """Equal folded strings, or near-equal ones where the key has a typo."""
    if value == key:
        return True
    if not value or not key or abs(len(value) - len(key)) > 0.1 * len(key):
        return False
    return difflib.SequenceMatcher(None, value, key, autojunk=False).ratio() >= MIN_RATIO


#: A run whose folded text is this similar to the key is labelled right (keys carry typos).
MIN_RATIO = 0.92


@dataclass(frozen=True)
class Group:
    """One receipt's candidate runs for one field: features and which runs are right."""

    runs: Runs
    right: np.ndarray
    values: list[str]


@dataclass(frozen=True)
class HeaderExample:
    """One receipt's top lines: candidate runs with labels, keys and the rules' answers."""

    page: Page
    lines: list[Line]
    name: Group
    address: Group
    company: str
    address_key: str
    rule_company: str
    rule_address: str
    rule_name_idx: list[int]
    rule_address_idx: list[int]
    rows: Matrix


def _group(runs: Runs, lines: list[Line], key: str, text: Callable[[list[Line]], str]) -> Group:
    values = [fold_text(text(lines[s:e])) for s, e in zip(runs.starts, runs.ends, strict=True)]
    return Group(runs, np.array([same_text(v, key) for v in values]), values)


def header_example(lines: Sequence[OcrLine], key: dict[str, str]) -> HeaderExample:
    page = build_page(lines)
    merchant, address = rule_header(page)
    top = top_lines(page)
    name_ids = set(merchant.lines if merchant else [])
    address_ids = set(address.lines if address else [])
    rows = header_features(page, top, name_ids, address_ids)
    name_idx = [k for k, ln in enumerate(top) if ln.id in name_ids]
    address_idx = [k for k, ln in enumerate(top) if ln.id in address_ids]
    company, addr = fold_text(key.get("company", "")), fold_text(key.get("address", ""))
    name_runs = candidate_runs(rows, 0, NAME_WINDOW, NAME_MAX, name_idx)
    address_runs = candidate_runs(rows, 0, len(top), ADDRESS_MAX, address_idx)
    if name_runs is None or address_runs is None:
        raise ValueError("a receipt with no lines has no header to learn from")
    return HeaderExample(
        page=page,
        lines=top,
        name=_group(name_runs, top, company, name_text),
        address=_group(address_runs, top, addr, address_value),
        company=company,
        address_key=addr,
        rule_company=fold_text(merchant.value) if merchant else "",
        rule_address=fold_text(address.value) if address else "",
        rule_name_idx=name_idx,
        rule_address_idx=address_idx,
        rows=rows,
    )


def _ranker_loss(xs: list[Matrix], rights: list[np.ndarray], w: Matrix, l2: float) -> float:
    total = 0.5 * l2 * float(w @ w)
    for x, right in zip(xs, rights, strict=True):
        z = x @ w
        top = z.max()
        all_ = top + np.log(np.exp(z - top).sum())
        zr = z[right]
        good = zr.max() + np.log(np.exp(zr - zr.max()).sum())
        total += float(all_ - good)
    return total


def _ranker_derivatives(
    xs: list[Matrix], rights: list[np.ndarray], w: Matrix, l2: float
) -> tuple[Matrix, Matrix]:
    grad = l2 * w
    hess = np.diag(np.full(len(w), l2 + 1e-6))
    for x, right in zip(xs, rights, strict=True):
        z = x @ w
        p = np.exp(z - z.max())
        p /= p.sum()
        zr = np.where(right, z, -np.inf)
        q = np.exp(zr - zr.max())
        q /= q.sum()
        grad = grad + x.T @ (p - q)
        xp = x.T @ p
        hess = hess + (x.T * p) @ x - np.outer(xp, xp)
    return grad, hess


def fit_ranker(
    groups: Sequence[Group], names: Sequence[str], l2: float = 1.0, steps: int = 25
) -> LinearModel:
    """A conditional logit: softmax over each receipt's candidates, maximising the probability
    of its right ones, L2-regularised, on standardised features (Newton's method)."""
    used = [g for g in groups if g.right.any()]
    stacked = np.vstack([g.runs.rows for g in used])
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = [(g.runs.rows - mean) / scale for g in used]
    rights = [g.right for g in used]
    w = np.zeros(stacked.shape[1])
    loss = _ranker_loss(xs, rights, w, l2)
    for _ in range(steps):
        grad, hess = _ranker_derivatives(xs, rights, w, l2)
        delta = np.linalg.solve(hess, grad)
        step = 1.0
        while step > 1e-4:  # damped Newton: halve the step until the loss falls
            trial = w - step * delta
            trial_loss = _ranker_loss(xs, rights, trial, l2)
            if trial_loss <= loss:
                break
            step /= 2
        if step <= 1e-4 or loss - trial_loss < 1e-7:
            break
        w, loss = trial, trial_loss
    return LinearModel(tuple(names), mean, scale, w, 0.0)


def fit_header(examples: Sequence[HeaderExample], l2: float) -> dict[str, LinearModel]:
    names = span_names(NAMES)
    return {
        "merchant": fit_ranker([e.name for e in examples], names, l2),
        "address": fit_ranker([e.address for e in examples], names, l2),
    }


def decode(example: HeaderExample, models: dict[str, LinearModel]) -> tuple[str, str]:
    """The folded merchant and address the models choose for one receipt."""
    g = example.name
    best = int(np.argmax(models["merchant"].logits(g.runs.rows)))
    end = int(g.runs.ends[best])
    runs = candidate_runs(
        example.rows, end, len(example.lines), ADDRESS_MAX, example.rule_address_idx
    )
    if runs is None:
        return g.values[best], example.rule_address
    k = int(np.argmax(models["address"].logits(runs.rows)))
    address = fold_text(address_value(example.lines[int(runs.starts[k]) : int(runs.ends[k])]))
    return g.values[best], address


@dataclass(frozen=True, slots=True)
class CvResult:
    l2: float
    company: float
    address: float
    rule_company: float
    rule_address: float


def cross_validate(examples: Sequence[HeaderExample], l2: float, folds: int = 5) -> CvResult:
    """k-fold accuracy of the decoded fields (each receipt scored by a model not fitted on it),
    beside the rules' accuracy on the same receipts."""
    n = len(examples)
    right = np.zeros((n, 4), dtype=bool)
    for k in range(folds):
        models = fit_header([e for i, e in enumerate(examples) if i % folds != k], l2)
        for i in range(k, n, folds):
            e = examples[i]
            company, address = decode(e, models)
            right[i] = (
                company == e.company,
                address == e.address_key,
                e.rule_company == e.company,
                e.rule_address == e.address_key,
            )
    acc = right.mean(axis=0)
    return CvResult(l2, float(acc[0]), float(acc[1]), float(acc[2]), float(acc[3]))


def fit_chosen(
    examples: Sequence[HeaderExample], l2: float, result: CvResult, source: str
) -> LineModels:
    """Fit on all examples; keep a field's scorer only where it beat the rules in CV."""
    models = fit_header(examples, l2)
    keep = {
        "merchant": result.company > result.rule_company,
        "address": result.address > result.rule_address,
    }
    return LineModels({k: m for k, m in models.items() if keep[k]}, source)
