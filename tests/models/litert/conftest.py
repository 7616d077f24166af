"""Fixtures of the LiteRT tests: the tiny committed models and model folders built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.litert import ModelEntry, sha256_file, upsert_entry

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_folder(
    folder: Path, model: str = "tiny_ctc_int8.tflite", name: str = "recognizer"
) -> Path:
    """A model folder holding one fixture model listed under `name` with charset "ab"."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model
    shutil.copyfile(FIXTURES / model, target)
    entry = ModelEntry(
        file=model,
        version="test-1",
        sha256=sha256_file(target),
        bytes=target.stat().st_size,
        input={"height": 8, "channels": 1, "range": [0.0, 1.0]},
        charset="ab",
        training_data=["none: fixed weights"],
    )
    upsert_entry(folder, name, entry)
    return folder


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "models")
