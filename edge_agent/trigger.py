"""Placement trigger: decides from a stream of frames when a receipt was placed and is still.

A pure state machine (no camera, no clock): feed it frames with `PlacementTrigger.update`; it
returns the still frame exactly once per placement.

States:

- ``learning``: the first `learn_frames` frames are averaged into the empty background.
- ``armed``: the scene looks like the background (which slowly follows lighting changes). When
  more than `change_fraction` of the pixels differ from it, something was placed: ``settling``.
- ``settling``: waits until the scene has been still (less than `still_fraction` of the pixels
  change from one frame to the next) for `still_frames` consecutive frames, then FIRES with that
  frame and goes to ``fired``. If the scene returns to the background first, back to ``armed``.
- ``fired``: waits for the scene to return to the background (the receipt was removed) for
  `clear_frames` frames, then re-arms. A receipt left in place never fires twice.

Comparisons run on a downscaled, blurred grey copy, so noise and small jitter don't count.
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from edge_agent.configbase import StrictModel

log = logging.getLogger(__name__)

TriggerState = Literal["learning", "armed", "settling", "fired"]


class TriggerConfig(StrictModel):
    """When a live source's frame is taken as a scan."""

    width: int = Field(default=160, ge=16, le=1920, description="Width frames are scaled to.")
    pixel_threshold: int = Field(
        default=25, ge=1, le=255, description="Grey-level difference that counts as a change."
    )
    change_fraction: float = Field(
        default=0.03,
        gt=0,
        lt=1,
        description="Share of pixels differing from the background that means 'receipt placed'.",
    )
    still_fraction: float = Field(
        default=0.003,
        ge=0,
        lt=1,
        description="Largest share of pixels changing between frames that still counts as still.",
    )
    still_frames: int = Field(
        default=5, ge=1, description="Consecutive still frames needed before firing."
    )
    learn_frames: int = Field(
        default=5, ge=1, description="Frames averaged into the background at start."
    )
    clear_frames: int = Field(
        default=3, ge=1, description="Frames that must look empty again before re-arming."
    )
    background_alpha: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How fast the background follows slow lighting changes while armed.",
    )


class PlacementTrigger:
    """Feed frames in; get the still frame back once per placed receipt."""

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = config or TriggerConfig()
        self.fired_count = 0
        self.state: TriggerState = "learning"
        self._background: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._learned = self._still = self._clear = 0

    def reset(self) -> None:
        """Forget the background (e.g. after the camera was reopened or moved)."""
        self.state = "learning"
        self._background = self._previous = None
        self._learned = self._still = self._clear = 0

    def _small(self, frame: np.ndarray) -> np.ndarray:
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape[:2]
        width = min(self.config.width, w)
        height = max(1, round(h * width / w))
        small = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)

    def _changed(self, a: np.ndarray, b: np.ndarray) -> float:
        """Share of pixels whose grey level differs by more than the threshold."""
        return float(np.count_nonzero(np.abs(a - b) > self.config.pixel_threshold)) / a.size

    def update(self, frame: np.ndarray) -> np.ndarray | None:
        """Take one frame (BGR or grey); return it if it is the still of a placed receipt."""
        cfg = self.config
        small = self._small(frame)
        previous, self._previous = self._previous, small
        if self._background is None or self._background.shape != small.shape:
            self._background, self._learned, self.state = small.copy(), 1, "learning"
            return None
        if self.state == "learning":
            self._learned += 1
            self._background += (small - self._background) / self._learned
            if self._learned >= cfg.learn_frames:
                self.state = "armed"
                log.debug("trigger armed: background learned from %d frames", self._learned)
            return None

        from_background = self._changed(small, self._background)
        if self.state == "armed":
            self._armed(small, from_background)
            return None
        if self.state == "settling":
            return frame if self._settling(small, previous, from_background) else None
        self._fired(from_background)
        return None

    def _armed(self, small: np.ndarray, from_background: float) -> None:
        cfg = self.config
        assert self._background is not None
        if from_background > cfg.change_fraction:
            self.state, self._still = "settling", 0
            log.debug("trigger: scene changed (%.3f of pixels), settling", from_background)
        else:
            self._background += cfg.background_alpha * (small - self._background)

    def _settling(
        self, small: np.ndarray, previous: np.ndarray | None, from_background: float
    ) -> bool:
        cfg = self.config
        if from_background <= cfg.change_fraction:
            self.state = "armed"
            return False
        motion = 1.0 if previous is None else self._changed(small, previous)
        self._still = self._still + 1 if motion <= cfg.still_fraction else 0
        if self._still < cfg.still_frames:
            return False
        self.state, self._clear = "fired", 0
        self.fired_count += 1
        log.debug("trigger fired (%d): still for %d frames", self.fired_count, self._still)
        return True

    def _fired(self, from_background: float) -> None:
        """Wait until the receipt is taken away, then re-arm."""
        ok = from_background <= self.config.change_fraction
        self._clear = self._clear + 1 if ok else 0
        if self._clear >= self.config.clear_frames:
            self.state = "armed"
            log.debug("trigger re-armed: scene back to background")
