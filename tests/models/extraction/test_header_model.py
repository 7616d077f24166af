"""The learned header reader: candidate runs, the linear table, and the fallback to the rules."""

from __future__ import annotations

import numpy as np
import pytest

from models.extraction import extract_fields
from models.extraction.header_features import NAMES, header_features, top_lines
from models.extraction.header_model import candidate_runs, read_header, span_names
from models.extraction.layout import build_page
from models.extraction.linear import LinearModel, LineModels
from models.extraction.linear import load as load_models
from tests.models.extraction.synthetic import lines

RECEIPT: list[str | tuple[str, str]] = [
    "GREEN GROCER LTD",
    "12 High Street",
    "London NW1 8AB",
    "VAT 123 4567 89",
    ("TOTAL", "4.00"),
]


def test_candidate_runs_cover_every_short_run_and_mark_the_rules_run() -> None:
    rows = np.arange(12, dtype=np.float64).reshape(6, 2)
    runs = candidate_runs(rows, 0, 3, 2, [1, 2])
    assert runs is not None
    pairs = list(zip(runs.starts.tolist(), runs.ends.tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4)]
    is_rule = runs.rows[:, 6 + 4]  # first, last, mean (2 each), then len1..len4plus, is_rule
    assert is_rule.tolist() == [0, 0, 0, 1, 0, 0]
    mean_of_1_3 = runs.rows[3, 4:6]
    assert mean_of_1_3.tolist() == [3.0, 4.0]  # rows 1 and 2: (2, 3) and (4, 5)


def test_header_features_have_one_row_per_top_line() -> None:
    page = build_page(lines(RECEIPT))
    top = top_lines(page)
    rows = header_features(page, top, {0}, {1, 2})
    assert rows.shape == (len(top), len(NAMES))
    assert np.isfinite(rows).all()


def _model(weights: dict[str, float]) -> LinearModel:
    names = span_names(NAMES)
    w = np.array([weights.get(n, 0.0) for n in names])
    return LinearModel(names, np.zeros(len(names)), np.ones(len(names)), w, 0.0)


def test_a_scorer_picks_the_run_its_weights_favour() -> None:
    page = build_page(lines(RECEIPT))
    # A scorer that only trusts 'starts with a number' picks '12 High Street' as the name.
    odd = LineModels({"merchant": _model({"first_house_number": 5.0, "len1": 3.0})})
    merchant, address = read_header(page, odd, [0], [1, 2])
    assert merchant is not None and merchant.value == "12 High Street"
    assert address is None  # no address scorer: the caller keeps the rules'
    assert 0.0 < merchant.confidence <= 1.0


def test_without_a_table_the_rules_answer_stands() -> None:
    page = build_page(lines(RECEIPT))
    assert read_header(page, LineModels({}), [0], [1, 2]) == (None, None)
    f = extract_fields(lines(RECEIPT), models=LineModels({})).fields
    assert f.merchant is not None and f.merchant.value == "GREEN GROCER LTD"


def test_table_round_trip_and_shape_checks() -> None:
    table = LineModels({"merchant": _model({"len1": 1.0})}, "test")
    again = LineModels.from_json(table.to_json())
    model = again.get("merchant")
    assert model is not None and model.names == span_names(NAMES)
    with pytest.raises(ValueError, match="expected"):
        model.logits(np.zeros((2, 3)))
    committed = load_models()
    for m in committed.models.values():
        assert m.names == span_names(NAMES)  # the table matches the features the code computes
