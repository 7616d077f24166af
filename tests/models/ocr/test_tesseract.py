"""The Tesseract engine (models/ocr/tesseract.py) on a rendered receipt and on SROIE lines."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pytest

from models.imageio import load_image
from models.ocr import EngineUnavailable, OcrEngine, TesseractConfig, build_engine
from models.ocr.linefile import read_line_file
from models.ocr.tesseract import _lines_from_tsv
from tests.models.synthetic import RECEIPT_LINES, render_receipt


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.upper(), b.upper()).ratio()


def test_reads_the_lines_of_a_receipt(tesseract: OcrEngine) -> None:
    image = render_receipt()
    lines = tesseract.read_lines(image)
    expected = [" ".join(t.split()) for t in RECEIPT_LINES if t.strip()]
    assert [line.id for line in lines] == list(range(len(lines)))
    assert _similarity("\n".join(line.text for line in lines), "\n".join(expected)) > 0.9
    height, width = image.shape[:2]
    tops = []
    for line in lines:
        (x0, y0), (x1, _), (_, y2), _ = line.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y2 <= height
        assert 0.0 <= line.confidence <= 1.0
        tops.append(y0)
    assert tops == sorted(tops)  # one column, read top to bottom
    total = next(line for line in lines if line.text.startswith("TOTAL"))
    assert total.text.endswith("14.64") and total.confidence > 0.5


def test_a_blank_page_has_no_lines(tesseract: OcrEngine) -> None:
    assert tesseract.read_lines(np.full((200, 300, 3), 255, np.uint8)) == []


def test_recognizes_ground_truth_line_crops(tesseract: OcrEngine, sroie_dir: Path) -> None:
    image = load_image(sroie_dir / "img" / "000.jpg")
    truth = read_line_file(sroie_dir / "box" / "000.txt")[:10]
    crops = []
    for line in truth:
        xs, ys = [int(p[0]) for p in line.box], [int(p[1]) for p in line.box]
        crops.append(image[min(ys) : max(ys), min(xs) : max(xs)])
    crops.append(image[0:0, 0:0])  # an empty crop
    results = tesseract.recognize_crops(crops)
    assert len(results) == len(crops)
    assert results[-1] == ("", 0.0)
    scores = [_similarity(text, line.text) for (text, _), line in zip(results, truth, strict=False)]
    assert sum(s > 0.8 for s in scores) >= 8, list(
        zip(results, [t.text for t in truth], strict=False)
    )


def test_parallel_crops_give_the_same_answers() -> None:
    image = render_receipt()
    crops = [image[20 + 30 * i : 50 + 30 * i, 10:470] for i in range(4)]
    one = build_engine(TesseractConfig(), threads=1).recognize_crops(crops)
    two = build_engine(TesseractConfig(), threads=2).recognize_crops(crops)
    assert one == two
    assert one[0][0] == "CORNER GROCERY LTD"


def test_missing_binary_names_the_package() -> None:
    with pytest.raises(EngineUnavailable, match="apt-get install tesseract-ocr"):
        build_engine(TesseractConfig(binary="/nonexistent/tesseract"))


def test_missing_language_names_the_package(tesseract: OcrEngine) -> None:
    with pytest.raises(EngineUnavailable, match="tesseract-ocr-chi-sim"):
        build_engine(TesseractConfig(lang="eng+chi_sim"))


def test_version_is_reported(tesseract: OcrEngine) -> None:
    assert tesseract.name == "tesseract"
    assert tesseract.version.split(".")[0].isdigit()


def test_tsv_words_are_grouped_into_lines() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight"
    header += "\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t500\t300\t-1\t",
        "4\t1\t1\t1\t1\t0\t10\t10\t200\t20\t-1\t",
        "5\t1\t1\t1\t1\t1\t10\t10\t80\t20\t90.0\tTOTAL",
        "5\t1\t1\t1\t1\t2\t150\t12\t60\t18\t70.0\t9.00",
        "5\t1\t1\t1\t1\t3\t215\t12\t5\t18\t95.0\t ",
        "5\t1\t2\t1\t1\t1\t300\t10\t50\t20\t-1\tCASH",
    ]
    lines = _lines_from_tsv("\n".join([header, *rows]) + "\n")
    assert [(line.id, line.text) for line in lines] == [(0, "TOTAL 9.00"), (1, "CASH")]
    assert lines[0].box == ((10.0, 10.0), (210.0, 10.0), (210.0, 30.0), (10.0, 30.0))
    assert lines[0].confidence == pytest.approx(0.8)
    assert lines[1].confidence == 0.0  # Tesseract's -1, clamped
