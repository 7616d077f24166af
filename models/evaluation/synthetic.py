"""Receipts written by `receipts synth` as an evaluation set: photo, ground-truth lines, key.

`receipts synth --out DIR` writes each countertop photo as NNNNNNN.jpg beside its label
NNNNNNN.json (`models.synth.labels.SceneLabel`: the printed lines with their boxes on the flat
paper, and the receipt's true fields). `receipts eval fields --data DIR` reads such a folder
like a SROIE one: `--ocr gt` scores extraction from the label's lines, `--ocr litert` or
`tesseract` the whole read of the photo, in every locale the generator draws (US month-first
dates, euro decimal commas, yen without decimals, Swedish compact dates ...). The key holds
the four SROIE fields: the merchant as the company, the address lines joined by spaces, the
date (ISO) and the total as a decimal string.

Seeds matter: the models were trained on generator output, so score a folder written from
seeds the training never drew (`receipts synth --seed 6000000000000`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from models.receipt import OcrLine
from models.synth.labels import SceneLabel


class SyntheticSetError(ValueError):
    """A folder that is not a readable `receipts synth` output."""


@dataclass(frozen=True)
class SyntheticReceipt:
    """One labelled photo of a receipt."""

    id: str
    image_path: Path
    label: SceneLabel

    def key(self) -> dict[str, str]:
        fields = self.label.fields
        if fields is None:
            return {}
        return {
            "company": fields.merchant,
            "date": fields.date,
            "address": " ".join(fields.address),
            "total": fields.total,
        }

    def lines(self) -> list[OcrLine]:
        """The printed segments as OCR lines, boxed on the flat paper (ground truth)."""
        out: list[OcrLine] = []
        for printed in self.label.lines:
            x0, y0, x1, y1 = printed.paper_box
            box = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
            out.append(OcrLine(id=len(out), text=printed.text, box=box))
        return out


def is_synthetic_set(folder: Path) -> bool:
    """Whether the folder looks like `receipts synth` output (photos with JSON labels)."""
    return any(p.with_suffix(".jpg").exists() for p in folder.glob("*.json"))


def synthetic_receipts(folder: Path) -> list[SyntheticReceipt]:
    """The folder's receipt photos with fields (empty countertops and scans without fields are
    left out), in name order."""
    out = []
    for path in sorted(folder.glob("*.json")):
        image = path.with_suffix(".jpg")
        if not image.exists():
            continue
        try:
            label = SceneLabel.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError) as exc:
            raise SyntheticSetError(f"{path}: not a receipts synth label: {exc}") from exc
        if label.fields is not None:
            out.append(SyntheticReceipt(path.stem, image, label))
    if not out:
        raise SyntheticSetError(f"{folder}: no receipt photos with labelled fields")
    return out
