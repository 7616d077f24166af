"""OpenCV source: a USB/V4L2 camera by index, or a video file (for tests and replays)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
from pydantic import Field

from edge_agent.capture.base import Capture, SourceUnavailable, utcnow
from edge_agent.configbase import StrictModel

log = logging.getLogger(__name__)


class OpenCVSourceConfig(StrictModel):
    """Frames from OpenCV's VideoCapture: a camera index or a video file path."""

    type: Literal["opencv"] = Field(description="Selects the OpenCV camera/video source.")
    device: int | str = Field(
        default=0, description="Camera index (0 = /dev/video0) or path of a video file."
    )
    width: int | None = Field(default=None, ge=16, description="Requested frame width (cameras).")
    height: int | None = Field(default=None, ge=16, description="Requested frame height (cameras).")
    max_fps: float | None = Field(
        default=None,
        gt=0,
        description="Read at most this many frames per second (default: as they come).",
    )
    reopen_delay_s: float = Field(
        default=2.0, gt=0, description="Wait before reopening a camera that stopped delivering."
    )


class OpenCVSource:
    """Yields every frame; a camera that fails is reopened, a video file ends the stream."""

    live = True

    def __init__(self, config: OpenCVSourceConfig) -> None:
        self.config = config
        self.is_file = isinstance(config.device, str)
        if isinstance(config.device, str) and not Path(config.device).is_file():
            raise SourceUnavailable(f"source.device: video file {config.device} does not exist")
        self.state = "closed"
        self._cap: cv2.VideoCapture | None = None

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.config.device)
        if not cap.isOpened():
            cap.release()
            raise SourceUnavailable(f"OpenCV cannot open {self.config.device!r}")
        if self.config.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        if self.config.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        return cap

    def captures(self, stop: threading.Event) -> Iterator[Capture]:
        name = str(self.config.device) if self.is_file else f"camera:{self.config.device}"
        period = 1.0 / self.config.max_fps if self.config.max_fps else 0.0
        while not stop.is_set():
            if self._cap is None:
                try:
                    self._cap = self._open()
                    self.state = "ok"
                    log.info("opened %s", name)
                except SourceUnavailable as exc:
                    self.state = f"error: {exc}"
                    if self.is_file:
                        log.error("%s", exc)
                        return
                    log.error("%s; retrying in %.0f s", exc, self.config.reopen_delay_s)
                    stop.wait(self.config.reopen_delay_s)
                    continue
            started = time.monotonic()
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self.close()
                if self.is_file:
                    self.state = "ended"
                    log.info("video %s ended", name)
                    return
                self.state = "error: no frame"
                log.warning(
                    "%s delivered no frame; reopening in %.0f s", name, self.config.reopen_delay_s
                )
                stop.wait(self.config.reopen_delay_s)
                continue
            yield Capture(frame, name, utcnow())
            if period:
                stop.wait(max(0.0, period - (time.monotonic() - started)))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
