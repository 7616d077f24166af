"""The OCR engine config union and factory (models/ocr/engines.py)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from models.ocr import ENGINE_TYPES, OcrEngine, OcrEngineConfig, TesseractConfig, build_engine

CONFIG = TypeAdapter(OcrEngineConfig)


def test_type_picks_the_config_class() -> None:
    config = CONFIG.validate_python({"type": "tesseract", "psm": 6})
    assert isinstance(config, TesseractConfig) and config.psm == 6
    assert "tesseract" in ENGINE_TYPES


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="'tesseract'"):
        CONFIG.validate_python({"type": "abbyy"})


def test_unknown_keys_and_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        CONFIG.validate_python({"type": "tesseract", "langs": "eng"})
    with pytest.raises(ValidationError, match="psm"):
        CONFIG.validate_python({"type": "tesseract", "psm": 99})
    with pytest.raises(ValidationError, match="lang"):
        CONFIG.validate_python({"type": "tesseract", "lang": "eng; rm -rf /"})


def test_factory_builds_an_engine(tesseract: OcrEngine) -> None:
    engine = build_engine(TesseractConfig(), threads=2)
    assert isinstance(engine, OcrEngine)
    assert engine.name == "tesseract"
