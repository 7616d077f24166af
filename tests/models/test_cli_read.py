"""`receipts scan` and `receipts extract` (models/cli_read.py), run through the real entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from models.cli import main


def _run(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, list(args))
    rows = [json.loads(row) for row in result.stdout.splitlines() if row.startswith("{")]
    return result.exit_code, rows, result.output


def test_scan_reads_good_images_and_reports_broken_ones(sroie_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "001.jpg"
    shutil.copy(sroie_dir / "img" / "001.jpg", good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:5000])
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    code, rows, _ = _run("scan", str(broken), str(good), str(text), "--json")
    assert code == 1
    assert [row["file"] for row in rows] == [str(broken), str(good), str(text)]
    assert "truncated" in str(rows[0]["error"]) and "not an image" in str(rows[2]["error"])
    read = rows[1]
    assert "error" not in read
    fields, confidences = read["fields"], read["confidences"]
    assert isinstance(fields, dict) and isinstance(confidences, dict)
    assert fields["date"] == "2018-10-19"
    assert set(confidences) == set(fields)
    assert set(read["timings_ms"]) == {"find", "rectify", "quality", "ocr", "extract", "total"}
    assert read["ocr_engine"] == "litert" and isinstance(read["needs_review"], bool)  # the default


def test_scan_summary_without_json(tmp_path: Path) -> None:
    from models.imageio import encode_image
    from tests.models.synthetic import render_receipt

    path = tmp_path / "receipt.png"
    path.write_bytes(encode_image(render_receipt(), "png"))
    code, _, output = _run("scan", str(tmp_path), "--no-find", "--threads", "2")
    assert code == 0, output
    assert str(path) in output
    assert "total" in output and "14.64" in output
    assert "timings:" in output


def test_scan_refuses_an_unknown_engine(tmp_path: Path) -> None:
    code, _, output = _run("scan", str(tmp_path), "--engine", "abbyy")
    assert code == 2 and "abbyy" in output


def test_extract_reads_box_files_and_json_lines(sroie_dir: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_text(
        json.dumps({"text": "TOTAL 12.50", "box": [[0, 0], [9, 0], [9, 9], [0, 9]]}) + "\n"
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,TOTAL\n")
    code, rows, _ = _run(
        "extract", str(sroie_dir / "box" / "000.txt"), str(jsonl), str(bad), "--json"
    )
    assert code == 1
    assert rows[0]["fields"]["total"] == "9.00"
    assert rows[0]["fields"]["date"] == "2018-12-25"
    assert rows[1]["fields"]["total"] == "12.50"
    assert "row 1" in str(rows[2]["error"])


def test_extract_summary_without_json(sroie_dir: Path) -> None:
    code, _, output = _run("extract", str(sroie_dir / "box" / "000.txt"))
    assert code == 0
    assert "total" in output and "9.00" in output
