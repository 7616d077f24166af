"""The OpenCV source reading a generated video file, through the placement trigger."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.capture import OpenCVSource, OpenCVSourceConfig, SourceUnavailable
from edge_agent.trigger import PlacementTrigger, TriggerConfig


def scene(receipt_x: int | None) -> np.ndarray:
    frame = np.full((240, 320, 3), 70, np.uint8)
    frame[::10] = 80
    if receipt_x is not None:
        frame[30:210, receipt_x : receipt_x + 100] = 240
        frame[50:190:15, receipt_x + 10 : receipt_x + 90] = 20
    return frame


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def test_video_file_through_trigger_fires_once_per_placed_receipt(tmp_path: Path) -> None:
    frames = [scene(None)] * 8
    frames += [scene(x) for x in (0, 30, 60, 90)] + [scene(90)] * 10  # first receipt
    frames += [scene(None)] * 6  # removed
    frames += [scene(x) for x in (200, 180, 160)] + [scene(160)] * 10  # second receipt
    frames += [scene(160)] * 10  # left in place: no second fire
    path = tmp_path / "counter.avi"
    write_video(path, frames)

    source = OpenCVSource(OpenCVSourceConfig(type="opencv", device=str(path)))
    trigger = PlacementTrigger(TriggerConfig(still_frames=4, learn_frames=4))
    stills = []
    count = 0
    for capture in source.captures(threading.Event()):
        count += 1
        still = trigger.update(capture.image)
        if still is not None:
            stills.append(still)
    assert count == len(frames), "every frame of the video is read, then the stream ends"
    assert source.state == "ended"
    assert len(stills) == 2
    # the stills show the receipts where they came to rest (JPEG in the video: approximate)
    assert stills[0][100, 90 + 50].mean() > 200
    assert stills[1][100, 160 + 50].mean() > 200


def test_missing_video_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        OpenCVSource(OpenCVSourceConfig(type="opencv", device=str(tmp_path / "nope.avi")))
