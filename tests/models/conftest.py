"""Fixtures of the read pipeline's tests: the real receipt scans and the Tesseract engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.ocr import EngineUnavailable, OcrEngine, TesseractConfig, build_engine

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"
SROIE = DATASETS / "sroie-train"


@pytest.fixture(scope="session")
def sroie_dir() -> Path:
    """The SROIE training scans (img/, box/, key/), found beside the repository."""
    if not (SROIE / "img").is_dir():
        pytest.skip(f"the SROIE receipts are not at {SROIE} (the shared datasets folder)")
    return SROIE


@pytest.fixture(scope="session")
def tesseract() -> OcrEngine:
    """The Tesseract engine; missing Tesseract is a setup failure (bootstrap installs it)."""
    try:
        return build_engine(TesseractConfig(), threads=1)
    except EngineUnavailable as exc:
        pytest.fail(f"Tesseract is needed by these tests: {exc}")
