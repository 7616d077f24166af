"""The OCR engine plugins, gathered: one config union keyed on `type`, and one factory.

Adding an engine: write ``models/ocr/<key>.py`` with ``KEY``, a config class (subclass of
`EngineConfigBase` with ``type: Literal[KEY]``) and an engine class taking
``(config, threads)``; then add the config to `OcrEngineConfig` and the class to `_ENGINES`.
Import an optional runtime library inside the engine's constructor and raise
`EngineUnavailable` naming what to install, so the other engines keep working without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from models.ocr.base import OcrEngine
from models.ocr.litert import LiteRTConfig, LiteRTEngine
from models.ocr.tesseract import TesseractConfig, TesseractEngine

#: The config of any engine; the ``type`` key picks the schema and the class.
OcrEngineConfig = Annotated[TesseractConfig | LiteRTConfig, Field(discriminator="type")]

_ENGINES: dict[str, Callable[[Any, int], OcrEngine]] = {
    "tesseract": TesseractEngine,
    "litert": LiteRTEngine,
}

#: The engine types a config may name.
ENGINE_TYPES: tuple[str, ...] = tuple(_ENGINES)


def build_engine(config: OcrEngineConfig, *, threads: int = 1) -> OcrEngine:
    """The engine `config` describes, ready to read. Raises `EngineUnavailable` if it can't run."""
    try:
        factory = _ENGINES[config.type]
    except KeyError:  # a config class added to the union but not here
        raise ValueError(
            f"no OCR engine of type {config.type!r}; known: {', '.join(ENGINE_TYPES)}"
        ) from None
    return factory(config, threads)
