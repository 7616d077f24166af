"""The SROIE dataset on disk: box files (OCR lines), answer keys, images and the fixed split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models.ocr.linefile import LineFileError, parse_sroie_boxes
from models.receipt import OcrLine

SPLIT_FILE = Path(__file__).with_name("splits") / "sroie.json"


class DatasetError(ValueError):
    """The dataset folder or one of its files is not in the SROIE layout."""


@dataclass(frozen=True, slots=True)
class Key:
    company: str
    date: str
    address: str
    total: str


def parse_box_text(text: str, source: str = "<box>") -> list[OcrLine]:
    """Lines of a SROIE box file (`models.ocr.linefile`'s parser, with the dataset's error)."""
    try:
        return parse_sroie_boxes(text, source=source)
    except LineFileError as exc:
        raise DatasetError(str(exc)) from exc


def load_split(path: Path = SPLIT_FILE) -> dict[str, list[str]]:
    """The committed split: {"train": [...ids], "val": [...ids]}; refuses an id in both."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not {"train", "val"} <= data.keys():
        raise DatasetError(f"{path}: expected an object with 'train' and 'val' id lists")
    both = set(data["train"]) & set(data["val"])
    if both:
        raise DatasetError(f"{path}: ids in both train and val: {sorted(both)[:5]}; fix the file")
    return {"train": list(data["train"]), "val": list(data["val"])}


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    box_path: Path
    key_path: Path
    image_path: Path | None

    def lines(self) -> list[OcrLine]:
        return parse_box_text(
            self.box_path.read_text(encoding="utf-8", errors="replace"), str(self.box_path)
        )

    def key(self) -> Key:
        data = json.loads(self.key_path.read_text(encoding="utf-8", errors="replace"))
        return Key(
            company=str(data.get("company", "")),
            date=str(data.get("date", "")),
            address=str(data.get("address", "")),
            total=str(data.get("total", "")),
        )


def samples(data: Path, ids: list[str]) -> list[Sample]:
    """The samples with these ids under `data` (box/, key/, img/)."""
    if not (data / "box").is_dir() or not (data / "key").is_dir():
        raise DatasetError(f"{data}: expected box/ and key/ folders (the SROIE layout)")
    out = []
    for i in ids:
        box, key = data / "box" / f"{i}.txt", data / "key" / f"{i}.json"
        if not box.exists() or not key.exists():
            raise DatasetError(f"{data}: sample {i} lacks {box.name} or {key.name}")
        images = sorted((data / "img").glob(f"{i}.*")) if (data / "img").is_dir() else []
        out.append(Sample(i, box, key, images[0] if images else None))
    return out
