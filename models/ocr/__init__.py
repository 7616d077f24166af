"""OCR engines: plugins behind one interface, chosen by config (``type: tesseract``, ...)."""

from models.ocr.base import EngineUnavailable, OcrEngine, OcrError
from models.ocr.engines import ENGINE_TYPES, OcrEngineConfig, build_engine
from models.ocr.litert import LiteRTConfig
from models.ocr.tesseract import TesseractConfig

__all__ = [
    "ENGINE_TYPES",
    "EngineUnavailable",
    "LiteRTConfig",
    "OcrEngine",
    "OcrEngineConfig",
    "OcrError",
    "TesseractConfig",
    "build_engine",
]
