"""Fitting the learned header scorers: fuzzy labels, the conditional logit, and an example."""

from __future__ import annotations

import numpy as np

from models.evaluation.learn import Group, fit_ranker, header_example, same_text
from models.extraction.header_model import Runs
from tests.models.extraction.synthetic import lines


def test_same_text_forgives_a_key_typo_but_not_a_different_span() -> None:
    assert same_text("POPULARBOOKCOMSDNBHD", "POPULARBOOKCOMSDNBHD")
    assert same_text("SWCENTERORISESDNBHD", "SWCENTERPRISESDNBHD")  # a one-letter typo
    assert not same_text("DOMINOSPIZZAPERMASJAYA", "DOMINOSPIZZA")  # a branch too many
    assert not same_text("", "ACME")


def _group(rng: np.random.Generator) -> Group:
    """Six candidates; the right one has the largest first feature, the second is noise."""
    rows = rng.normal(size=(6, 2))
    right = np.zeros(6, dtype=bool)
    right[int(np.argmax(rows[:, 0]))] = True
    return Group(Runs(np.arange(6), np.arange(1, 7), rows), right, [""] * 6)


def test_the_ranker_learns_which_feature_marks_the_right_candidate() -> None:
    rng = np.random.default_rng(0)
    model = fit_ranker([_group(rng) for _ in range(60)], ("signal", "noise"), l2=0.1)
    assert model.weights[0] > 1.0
    assert abs(model.weights[1]) < 0.5 * model.weights[0]
    held = [_group(rng) for _ in range(40)]
    hits = [bool(g.right[int(np.argmax(model.logits(g.runs.rows)))]) for g in held]
    assert sum(hits) >= 38


def test_header_example_labels_the_runs_that_spell_the_key() -> None:
    receipt = lines(["ACME TRADING SDN BHD", "NO 5, JALAN MAJU 3,", "43000 KAJANG", "TEL 03-1"])
    ex = header_example(
        receipt, {"company": "ACME TRADING SDN BHD", "address": "NO 5, JALAN MAJU 3, 43000 KAJANG"}
    )
    right_names = [v for v, r in zip(ex.name.values, ex.name.right, strict=True) if r]
    assert right_names == ["ACMETRADINGSDNBHD"]
    right_addresses = [v for v, r in zip(ex.address.values, ex.address.right, strict=True) if r]
    assert right_addresses == ["NO5JALANMAJU343000KAJANG"]
    assert ex.rule_company == "ACMETRADINGSDNBHD"
