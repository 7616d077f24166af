"""The pipeline a models release asks for: its ``pipeline.yaml`` over the agent's, in its slot.

A models release (`edge_agent.ota`) is a folder of model files, optionally with a
``pipeline.yaml`` of pipeline settings (e.g. ``ocr: {type: litert, model_dir: litert}``). The
agent reads with `pipeline_config(base, models_dir)`: the release's settings over the agent
config's ``pipeline:``, relative paths (keys ending in ``_dir``, ``_path`` or ``_file``) taken
from the release's slot, and ``threads`` always the device's own (it is about this CPU, not the
release). ``models_dir`` None is the factory release: the config's pipeline as it is.

A `ReaderFactory` turns the result into a reader; the default, `build_pipeline_reader`, imports
`models.pipeline` only when called, so tests that inject a reader never load the OCR stack.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from edge_agent.reader import Reader
from models.pipeline import PipelineConfig

#: Builds the reader for a pipeline config (default: `models.pipeline.build_pipeline`).
ReaderFactory = Callable[[PipelineConfig], Reader]


def build_pipeline_reader(config: PipelineConfig) -> Reader:
    from models.pipeline import build_pipeline

    reader: Reader = build_pipeline(config)
    return reader


def pipeline_config(base: PipelineConfig, models_dir: Path | None) -> PipelineConfig:
    """The pipeline for `models_dir`: its ``pipeline.yaml`` over `base` (see the docstring)."""
    if models_dir is None or not (models_dir / "pipeline.yaml").is_file():
        return base
    path = models_dir / "pipeline.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of pipeline settings")
    merged = {**base.model_dump(), **in_slot(data, models_dir), "threads": base.threads}
    return PipelineConfig.model_validate(merged, context={"base_dir": models_dir})


def in_slot(data: Any, slot: Path) -> Any:
    """A release's pipeline settings with relative paths (keys ending in _dir, _path or _file,
    e.g. ``ocr.model_dir: litert``) taken from its slot folder."""
    if isinstance(data, dict):
        return {
            k: (
                str(slot / v)
                if isinstance(v, str)
                and k.endswith(("_dir", "_path", "_file"))
                and not Path(v).is_absolute()
                else in_slot(v, slot)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [in_slot(v, slot) for v in data]
    return data
