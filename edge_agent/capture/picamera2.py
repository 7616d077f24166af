"""Raspberry Pi camera source through picamera2 (imported only when this source is used)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from edge_agent.capture.base import Capture, SourceUnavailable, utcnow
from edge_agent.configbase import StrictModel

log = logging.getLogger(__name__)

MISSING = (
    "the picamera2 source needs the picamera2 library, which is not installed here: on Raspberry "
    "Pi OS run 'sudo apt install python3-picamera2' and create the agent's virtualenv with "
    "--system-site-packages; elsewhere use source type 'opencv' or 'folder'"
)


class Picamera2SourceConfig(StrictModel):
    """Frames from a Raspberry Pi camera module (libcamera via picamera2)."""

    type: Literal["picamera2"] = Field(description="Selects the Raspberry Pi camera source.")
    camera: int = Field(default=0, ge=0, description="Camera number, for Pis with two cameras.")
    width: int = Field(default=2028, ge=64, description="Frame width in pixels.")
    height: int = Field(default=1520, ge=64, description="Frame height in pixels.")
    max_fps: float = Field(default=5.0, gt=0, le=60, description="Frames per second to read.")


class Picamera2Source:
    """Yields frames from picamera2 as BGR arrays (its 'RGB888' format is BGR in memory)."""

    live = True

    def __init__(self, config: Picamera2SourceConfig) -> None:
        self.config = config
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            log.error("%s", MISSING)
            raise SourceUnavailable(MISSING) from exc
        self._factory: Any = Picamera2
        self._cam: Any = None
        self.state = "closed"

    def captures(self, stop: threading.Event) -> Iterator[Capture]:
        cfg = self.config
        try:
            self._cam = self._factory(cfg.camera)
            video = self._cam.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                controls={"FrameRate": cfg.max_fps},
            )
            self._cam.configure(video)
            self._cam.start()
        except Exception as exc:  # libcamera raises many kinds; all mean "no camera"
            self.state = f"error: {exc}"
            raise SourceUnavailable(f"picamera2 camera {cfg.camera} cannot start: {exc}") from exc
        self.state = "ok"
        name = f"picamera2:{cfg.camera}"
        while not stop.is_set():
            frame = self._cam.capture_array("main")
            yield Capture(frame, name, utcnow())

    def close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
            self._cam = None
