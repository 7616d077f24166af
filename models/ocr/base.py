"""The OCR engine contract every plugin implements, and the errors engines raise.

An engine SHALL be safe to call repeatedly from one thread; it MAY keep a loaded model or a
pool of workers between calls. Engines are built once, at start-up, by
`models.ocr.build_engine`; a plugin whose runtime (binary, library, model file) is missing
raises `EngineUnavailable` there, never later in the middle of a scan.

Errors:
    OcrError            reading one image failed (engine crashed, timed out, bad output)
    └── EngineUnavailable  the engine can't be used on this machine at all; says what to install
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from models.receipt import OcrLine


class OcrError(RuntimeError):
    """The engine failed to read an image; the message says which engine and why."""


class EngineUnavailable(OcrError):
    """The engine can't run here (missing binary, library, model or language data)."""


@runtime_checkable
class OcrEngine(Protocol):
    """Reads text from images. Images are BGR or grey uint8 arrays."""

    @property
    def name(self) -> str:
        """Short, stable engine name, e.g. ``tesseract``; goes into `Receipt.ocr_engine`."""
        ...

    @property
    def version(self) -> str:
        """Version of the engine and its model, for `Receipt.model_versions`."""
        ...

    def read_lines(self, image: np.ndarray) -> list[OcrLine]:
        """Detect and recognise the text lines of a whole (rectified) receipt image.

        SHALL return lines in reading order with ids 0, 1, 2, ... and boxes in pixels of
        `image`, corners clockwise from top-left. An image without text gives ``[]``.
        Raises `OcrError` when the engine fails.
        """
        ...

    def recognize_crops(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognise one text line per crop: ``(text, confidence in [0, 1])`` per crop, in order.

        For measuring recognisers on ground-truth line boxes. An empty or unreadable crop
        gives ``("", 0.0)``. Raises `OcrError` when the engine fails.
        """
        ...
