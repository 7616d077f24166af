"""`receipts eval ocr`: the same ground-truth crops and case-insensitive scoring for each engine."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from models.document.rectify import crop_quad
from models.evaluation.cli import eval_group
from models.evaluation.ocr import (
    ReceiptCrops,
    normalize_text,
    run_engine,
    score_lines,
)
from tests.models.litert.conftest import make_folder


def test_scoring_is_case_insensitive_and_counts_edits():
    assert normalize_text("  Total\u00a0 rm  1.50 ") == "TOTAL RM 1.50"
    score = score_lines(["Total 1.50", "CASH", "abc"], ["TOTAL 1.50", "CASH 2", "abd"])
    assert score.lines == 3 and score.exact_lines == 1
    assert score.chars == 10 + 6 + 3
    assert score.errors == 0 + 2 + 1
    assert score.cer == pytest.approx(3 / 19) and score.exact == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="2 predictions for 1 reference"):
        score_lines(["a", "b"], ["a"])


def test_quads_are_cut_upright_with_a_margin():
    gray = np.full((100, 200), 255, np.uint8)
    gray[40:60, 50:150] = 0
    crop = crop_quad(gray, ((50, 40), (150, 40), (150, 60), (50, 60)))
    assert crop.shape == (24, 104)  # 10 % of the 20 px height on each side
    assert crop[2:-2, 2:-2].max() < 60 and crop[0].min() > 200
    slanted = crop_quad(gray, ((50, 40), (150, 30), (150, 50), (50, 60)))
    assert slanted.shape[0] == 24


class Echo:
    """An engine that reads each crop as its width in pixels (a real OcrEngine, no model)."""

    name = "echo"
    version = "1"

    def read_lines(self, image):
        return []

    def recognize_crops(self, crops):
        return [(str(c.shape[1]), 1.0) for c in crops]


def test_run_engine_times_each_receipt_and_keeps_the_worst_lines():
    receipts = [
        ReceiptCrops("r1", [np.zeros((4, 12)), np.zeros((4, 7))], ["12", "8"]),
        ReceiptCrops("r2", [np.zeros((4, 100))], ["1"]),
    ]
    run = run_engine(Echo(), receipts, keep_worst=1)
    assert run.receipts == 2 and len(run.seconds) == 2
    assert run.score.lines == 3 and run.score.exact_lines == 1
    assert run.score.errors == 1 + 2 and run.worst == [("r2", "100", "1")]
    summary = run.summary()
    assert summary["engine"] == "echo" and summary["cer"] == pytest.approx(3 / 4, abs=1e-4)


@pytest.fixture
def dataset(tmp_path):
    """A one-receipt SROIE-layout folder: bars that the tiny test recognizer reads as "a"s."""
    data = tmp_path / "sroie"
    for sub in ("img", "box", "key"):
        (data / sub).mkdir(parents=True)
    page = np.full((200, 300), 255, np.uint8)
    rows = []
    for row, n in enumerate((3, 1, 2)):
        top = 20 + 50 * row
        for k in range(n):
            page[top : top + 16, 20 + 32 * k : 36 + 32 * k] = 0
        right = 20 + 32 * n
        rows.append(f"16,{top},{right},{top},{right},{top + 16},16,{top + 16},{'A' * n}")
    rows[2] = rows[2].rsplit(",", 1)[0] + ",AAA"  # a wrong reference: one missing "a"
    cv2.imwrite(str(data / "img" / "r1.jpg"), page)
    (data / "box" / "r1.txt").write_text("\n".join(rows) + "\n")
    (data / "key" / "r1.json").write_text(json.dumps({"company": "", "total": ""}))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": ["r1"]}))
    return data, split


def test_the_command_prints_every_engine_on_the_same_crops(tmp_path, dataset):
    data, split = dataset
    models = make_folder(tmp_path / "models")
    args = ["ocr", "--data", str(data), "--split-file", str(split), "--model-dir", str(models)]
    result = CliRunner().invoke(eval_group, [*args, "--engines", "litert,tesseract", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    by_engine = {e["engine"]: e for e in out["engines"]}
    assert set(by_engine) == {"litert", "tesseract"}
    litert = by_engine["litert"]
    assert (litert["lines"], litert["chars"]) == (3, 7)
    assert litert["exact"] == pytest.approx(2 / 3, abs=1e-4)
    assert litert["cer"] == pytest.approx(1 / 7, abs=1e-4)
    assert by_engine["tesseract"]["lines"] == 3
    table = CliRunner().invoke(eval_group, [*args, "--engines", "litert"])
    assert table.exit_code == 0 and "litert" in table.output and "14.29" in table.output


def test_unknown_engines_and_val_error_listings_are_refused(dataset):
    data, split = dataset
    args = ["ocr", "--data", str(data), "--split-file", str(split)]
    bad = CliRunner().invoke(eval_group, [*args, "--engines", "paddle"])
    assert bad.exit_code != 0 and "unknown engine(s) paddle" in bad.output
    worst = CliRunner().invoke(eval_group, [*args, "--worst", "5"])
    assert worst.exit_code != 0 and "train split only" in worst.output
