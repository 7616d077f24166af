"""Capture sources behind one interface, chosen by the config's `source.type`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge_agent.capture.base import Capture, Outcome, Source, SourceUnavailable
from edge_agent.capture.folder import FolderSource, FolderSourceConfig
from edge_agent.capture.opencv import OpenCVSource, OpenCVSourceConfig
from edge_agent.capture.picamera2 import Picamera2Source, Picamera2SourceConfig

SourceConfig = Annotated[
    FolderSourceConfig | OpenCVSourceConfig | Picamera2SourceConfig,
    Field(discriminator="type"),
]

__all__ = [
    "Capture",
    "FolderSource",
    "FolderSourceConfig",
    "OpenCVSource",
    "OpenCVSourceConfig",
    "Outcome",
    "Picamera2Source",
    "Picamera2SourceConfig",
    "Source",
    "SourceConfig",
    "SourceUnavailable",
    "build_source",
]


def build_source(config: SourceConfig) -> Source:
    """The source a config asks for. Raises `SourceUnavailable` saying why it can't run here."""
    if isinstance(config, FolderSourceConfig):
        return FolderSource(config)
    if isinstance(config, OpenCVSourceConfig):
        return OpenCVSource(config)
    return Picamera2Source(config)
