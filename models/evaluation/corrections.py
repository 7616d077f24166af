"""User corrections as training data: the record format, and reading an exported folder.

A correction is what a person changed on a read receipt. The server writes one JSON object per
line (JSON Lines, UTF-8) into `*.jsonl` files of an export folder; evaluation
(`receipts eval fields --data FOLDER`) and later training read them back with this module.

Record (version 1), one per corrected field:

    {
      "format": "receipt-correction/1",          # required, this exact string
      "receipt_id": "3f2c...",                   # required, the server's receipt id
      "field": "total",                          # required, a ReceiptFields name: merchant,
                                                 #   address, date, total, subtotal, currency...
      "old_value": "80.91",                      # what the model said (null if it said nothing)
      "new_value": "80.90",                      # what the person set (null: "there is none")
      "ocr_lines": [                             # required, the lines the model read from
        {"id": 0, "text": "TOTAL 80.90", "box": [[x, y], [x, y], [x, y], [x, y]],
         "confidence": 0.93}
      ],
      "image_size": [1240, 2480],                # optional, width and height in pixels
      "model_versions": {"ocr": "...", "extraction": "..."},   # required, may be empty
      "corrected_at": "2025-01-31T09:12:00+00:00",             # required, ISO 8601 with offset
      "corrected_by": "user-uuid"                # optional, never a name or an e-mail
    }

Values are strings as a person types them: dates ISO 8601 (`2025-01-31`), amounts with a dot
(`80.90`). When one receipt's field was corrected twice the later `corrected_at` wins.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.receipt import OcrLine

FORMAT = "receipt-correction/1"

#: How the scored fields are named in a correction and in SROIE-style scoring.
SCORED = {"merchant": "company", "address": "address", "date": "date", "total": "total"}


class CorrectionError(ValueError):
    """A correction file or record does not follow the format in this module's docstring."""


@dataclass(frozen=True, slots=True)
class Correction:
    receipt_id: str
    field: str
    old_value: str | None
    new_value: str | None
    ocr_lines: list[OcrLine]
    image_size: tuple[int, int] | None
    model_versions: dict[str, str]
    corrected_at: dt.datetime
    corrected_by: str | None = None

    def to_json(self) -> str:
        """The record as one JSON line (what the server writes)."""
        return json.dumps(
            {
                "format": FORMAT,
                "receipt_id": self.receipt_id,
                "field": self.field,
                "old_value": self.old_value,
                "new_value": self.new_value,
                "ocr_lines": [ln.model_dump(mode="json") for ln in self.ocr_lines],
                "image_size": list(self.image_size) if self.image_size else None,
                "model_versions": self.model_versions,
                "corrected_at": self.corrected_at.isoformat(),
                "corrected_by": self.corrected_by,
            },
            ensure_ascii=False,
        )


def _text(record: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise CorrectionError(f"{where}: '{key}' is required")
        return None
    if not isinstance(value, str):
        raise CorrectionError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    return value


def parse_record(record: object, where: str = "<record>") -> Correction:
    """One record, checked against format version 1."""
    if not isinstance(record, dict):
        raise CorrectionError(f"{where}: expected a JSON object")
    if record.get("format") != FORMAT:
        raise CorrectionError(f"{where}: 'format' must be {FORMAT!r}, got {record.get('format')!r}")
    at = _text(record, "corrected_at", where, required=True) or ""
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError as exc:
        raise CorrectionError(f"{where}: 'corrected_at' is not ISO 8601: {at!r}") from exc
    if when.tzinfo is None:
        raise CorrectionError(f"{where}: 'corrected_at' needs a UTC offset: {at!r}")
    raw_lines = record.get("ocr_lines")
    if not isinstance(raw_lines, list):
        raise CorrectionError(f"{where}: 'ocr_lines' must be a list of OCR lines")
    try:
        lines = [OcrLine.model_validate(ln) for ln in raw_lines]
    except ValueError as exc:
        raise CorrectionError(f"{where}: bad OCR line: {exc}") from exc
    size = record.get("image_size")
    versions = record.get("model_versions")
    if not isinstance(versions, dict):
        raise CorrectionError(f"{where}: 'model_versions' must be an object (may be empty)")
    return Correction(
        receipt_id=_text(record, "receipt_id", where, required=True) or "",
        field=_text(record, "field", where, required=True) or "",
        old_value=_text(record, "old_value", where, required=False),
        new_value=_text(record, "new_value", where, required=False),
        ocr_lines=lines,
        image_size=(int(size[0]), int(size[1]))
        if isinstance(size, list) and len(size) == 2
        else None,
        model_versions={str(k): str(v) for k, v in versions.items()},
        corrected_at=when,
        corrected_by=_text(record, "corrected_by", where, required=False),
    )


def read_corrections(folder: Path) -> Iterator[Correction]:
    """Every record in the folder's `*.jsonl` files, in file and line order."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise CorrectionError(f"{folder}: no *.jsonl correction files")
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for n, raw in enumerate(handle, start=1):
                if raw.strip():
                    try:
                        record = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        raise CorrectionError(f"{path}:{n}: not JSON: {exc}") from exc
                    yield parse_record(record, f"{path}:{n}")


@dataclass(slots=True)
class CorrectedReceipt:
    """One receipt's latest OCR lines and the latest corrected value of each field."""

    receipt_id: str
    lines: list[OcrLine]
    image_size: tuple[int, int] | None
    values: dict[str, str | None] = field(default_factory=dict)
    at: dict[str, dt.datetime] = field(default_factory=dict)

    def key(self) -> dict[str, str]:
        """The SROIE-style answer key for the scored fields that were corrected."""
        return {SCORED[f]: v or "" for f, v in self.values.items() if f in SCORED}


def corrected_receipts(folder: Path) -> list[CorrectedReceipt]:
    """The folder's corrections grouped by receipt, the later correction of a field winning."""
    out: dict[str, CorrectedReceipt] = {}
    for c in sorted(read_corrections(folder), key=lambda c: c.corrected_at):
        receipt = out.setdefault(c.receipt_id, CorrectedReceipt(c.receipt_id, [], None))
        receipt.lines, receipt.image_size = c.ocr_lines, c.image_size
        receipt.values[c.field] = c.new_value
        receipt.at[c.field] = c.corrected_at
    return [out[k] for k in sorted(out)]
