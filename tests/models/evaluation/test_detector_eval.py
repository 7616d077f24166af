"""`receipts eval detector`: F1 of the engine's lines and boxes, and why each true box is missed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from models.evaluation.cli import eval_group
from models.evaluation.detector_cli import Coverage


def _box(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def test_each_unmatched_true_box_is_put_in_its_category() -> None:
    truth = [
        _box(0, 0, 100, 20),  # matched
        _box(0, 40, 60, 60),  # \ one found box runs over both: merged
        _box(70, 40, 130, 60),  # /
        _box(0, 80, 100, 100),  # two found halves: split
        _box(0, 120, 10, 140),  # nothing there: missed (a short '1')
        _box(0, 160, 20, 180),  # a found box three times as long: extent
    ]
    texts = ["TOTAL", "DATE", ":", "SUBTOTAL RM", "1", "SR"]
    found = [
        _box(1, 1, 99, 19),
        _box(0, 40, 130, 60),
        _box(0, 80, 48, 100),
        _box(52, 80, 100, 100),
        _box(0, 160, 60, 180),
        _box(300, 300, 360, 320),  # on no true box: spurious
    ]
    coverage = Coverage()
    coverage.add("p1", found, truth, texts)
    figures = coverage.figures()
    assert coverage.score.true_pos == 1
    assert figures["unmatched_truth"] == {"merged": 2, "split": 1, "missed": 1, "extent": 1}
    assert figures["unmatched_short_truth"] == {"merged": 1, "split": 0, "missed": 1, "extent": 1}
    assert figures["spurious_predicted"] == 1
    assert figures["precision"] == pytest.approx(1 / 6)
    assert figures["recall"] == pytest.approx(1 / 6)
    assert ("p1", "missed", "1") in coverage.examples
    # a second page adds up
    coverage.add("p2", [_box(0, 0, 10, 10)], [_box(0, 0, 10, 10)], ["A"])
    assert coverage.score.true_pos == 2 and coverage.score.truth == 7


def _sroie_folder(root: Path) -> Path:
    """One printed page in the SROIE layout (box/, key/, img/) and a split naming it."""
    for sub in ("box", "key", "img"):
        (root / sub).mkdir(parents=True)
    page = np.full((400, 320), 255, np.uint8)
    rows = []
    for k, text in enumerate(["KEDAI MAJU", "NO 5 JALAN", "TOTAL 9.90"]):
        y = 60 + 60 * k
        cv2.putText(page, text, (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
        x0, y0, x1, y1 = 16, y - h - 4, 24 + w, y + 6
        rows.append(f"{x0},{y0},{x1},{y0},{x1},{y1},{x0},{y1},{text}")
    cv2.imwrite(str(root / "img" / "001.jpg"), page)
    (root / "box" / "001.txt").write_text("\n".join(rows) + "\n")
    (root / "key" / "001.json").write_text(json.dumps({"company": "KEDAI MAJU"}))
    (root / "split.json").write_text(json.dumps({"train": ["001"], "val": []}))
    return root


def test_the_command_scores_the_shipped_detector_and_keeps_val_unseen(tmp_path: Path) -> None:
    data = _sroie_folder(tmp_path / "sroie")
    args = ["detector", "--data", str(data), "--split-file", str(data / "split.json")]
    result = CliRunner().invoke(eval_group, [*args, "--split", "train", "--json"])
    assert result.exit_code == 0, result.output
    both = json.loads(result.stdout)
    for figures in both.values():
        assert figures["truth"] == 3
        assert 0.0 <= figures["f1"] <= 1.0
        unmatched = sum(figures["unmatched_truth"].values())
        assert unmatched == 3 - round(figures["recall"] * 3)
    # the lines read are some of the detector's boxes: none is added
    assert both["lines"]["predicted"] <= both["detector"]["predicted"]
    listed = CliRunner().invoke(eval_group, [*args, "--split", "train", "--errors"])
    assert listed.exit_code == 0, listed.output
    assert "SROIE train, 1 receipts" in listed.stdout
    assert "lines read: F1" in listed.stdout and "detector boxes: F1" in listed.stdout
    refused = CliRunner().invoke(eval_group, [*args, "--errors"])
    assert refused.exit_code != 0 and "train split only" in refused.output
