"""Reading OCR lines from SROIE box files and JSON lines (models/ocr/linefile.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.ocr.linefile import LineFileError, read_line_file


def test_sroie_rows_split_on_the_first_eight_commas(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("\ufeff1,2,3,2,3,4,1,4,NO.53 55,57 & 59, JALAN\n\n5,6,7,6,7,8,5,8,TOTAL\n")
    lines = read_line_file(path)
    assert [(line.id, line.text) for line in lines] == [
        (0, "NO.53 55,57 & 59, JALAN"),
        (1, "TOTAL"),
    ]
    assert lines[0].box == ((1.0, 2.0), (3.0, 2.0), (3.0, 4.0), (1.0, 4.0))
    assert lines[0].confidence == 1.0


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    rows = [
        {"text": "TOTAL 9.00", "box": [[0, 0], [10, 0], [10, 5], [0, 5]], "confidence": 0.7},
        {"text": "CASH", "box": [[0, 6], [10, 6], [10, 9], [0, 9]]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = read_line_file(path)
    assert [(line.id, line.text, line.confidence) for line in lines] == [
        (0, "TOTAL 9.00", 0.7),
        (1, "CASH", 1.0),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,2,3,TOTAL\n", "row 1: expected 'x1,y1"),
        ("a,2,3,4,5,6,7,8,TOTAL\n", "must be numbers"),
        ('{"text": "x"}\n', "row 1: box"),
        ('{"text": "x", "box": [[0, 0], [1, 0], [1, 1], [0, 1]], "confidence": 2}\n', "confidence"),
        ('{"text": \n', "not a JSON object"),
    ],
)
def test_bad_rows_name_the_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(LineFileError, match=message) as info:
        read_line_file(path)
    assert "bad.txt" in str(info.value)


def test_not_utf8_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(b"1,2,3,4,5,6,7,8,CAF\xc9\n")
    with pytest.raises(LineFileError, match="not UTF-8"):
        read_line_file(path)
    with pytest.raises(LineFileError, match="cannot read"):
        read_line_file(tmp_path / "missing.txt")


def test_reads_every_sroie_box_file(sroie_dir: Path) -> None:
    files = sorted((sroie_dir / "box").glob("*.txt"))
    assert len(files) > 600
    assert all(read_line_file(f) for f in files)
