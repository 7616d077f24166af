"""Corrections as training data: the record format, the reader, and scoring from a folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.evaluation.cli import eval_group
from models.evaluation.corrections import (
    FORMAT,
    Correction,
    CorrectionError,
    corrected_receipts,
    parse_record,
)
from models.evaluation.sroie import parse_box_text
from tests.models.evaluation.test_cli import RECEIPT

LINES = parse_box_text(RECEIPT)
UTC = dt.UTC


def _correction(field: str, new: str | None, minute: int, receipt: str = "r1") -> Correction:
    return Correction(
        receipt_id=receipt,
        field=field,
        old_value="wrong",
        new_value=new,
        ocr_lines=LINES,
        image_size=(400, 300),
        model_versions={"ocr": "test-ocr 1", "extraction": "rules 2"},
        corrected_at=dt.datetime(2025, 1, 31, 9, minute, tzinfo=UTC),
    )


def _write(folder: Path, records: list[Correction]) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "export.jsonl").write_text("".join(r.to_json() + "\n" for r in records))
    return folder


def test_a_record_survives_the_round_trip() -> None:
    original = _correction("total", "12.50", 1)
    parsed = parse_record(json.loads(original.to_json()))
    assert parsed == original


def test_the_later_correction_of_a_field_wins(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "c",
        [_correction("total", "13.00", 5), _correction("total", "12.50", 1)],
    )
    (receipt,) = corrected_receipts(folder)
    assert receipt.values == {"total": "13.00"}
    assert receipt.key() == {"total": "13.00"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other/9"}, "'format' must be"),
        ({"corrected_at": "2025-01-31T09:00:00"}, "needs a UTC offset"),
        ({"receipt_id": None}, "'receipt_id' is required"),
        ({"ocr_lines": "TOTAL 12.50"}, "'ocr_lines' must be a list"),
        ({"model_versions": None}, "'model_versions' must be an object"),
    ],
)
def test_bad_records_say_what_is_wrong(change: dict[str, object], message: str) -> None:
    record = json.loads(_correction("total", "12.50", 1).to_json())
    record.update(change)
    with pytest.raises(CorrectionError, match=message):
        parse_record(record, "x.jsonl:1")


def test_eval_fields_scores_only_the_corrected_fields(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "c",
        [
            _correction("total", "12.50", 1, "r1"),  # the model reads 12.50: right
            _correction("total", "99.00", 1, "r2"),  # a person says otherwise: wrong
            _correction("merchant", "KEDAI MAKAN ABC SDN BHD", 2, "r2"),
            _correction("payment_method", "cash", 3, "r3"),  # not scored: no key
        ],
    )
    result = CliRunner().invoke(eval_group, ["fields", "--data", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 2
    assert report["accuracy"] == {"company": 1.0, "total": 0.5}
    assert report["counts"]["date"] == 0


def test_a_record_format_is_named_in_the_file() -> None:
    assert json.loads(_correction("date", "2025-01-31", 0).to_json())["format"] == FORMAT
