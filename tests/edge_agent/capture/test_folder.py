"""The watched-folder source: each file read once, moved to done/ or failed/ with a reason."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from edge_agent.capture import Capture, FolderSource, FolderSourceConfig


def write_jpeg(path: Path, level: int = 200) -> bytes:
    image = np.full((120, 80, 3), level, np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(data.tobytes())
    return data.tobytes()


def take(source: FolderSource, n: int, timeout: float = 10.0) -> list[Capture]:
    """The first `n` captures, or what came within `timeout`."""
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    got = []
    try:
        for capture in source.captures(stop):
            got.append(capture)
            if len(got) == n:
                break
    finally:
        timer.cancel()
    return got


def make(tmp_path: Path, **kw: float) -> FolderSource:
    kw.setdefault("poll_interval_s", 0.05)
    kw.setdefault("settle_s", 0.0)
    return FolderSource(FolderSourceConfig(type="folder", path=tmp_path / "inbox", **kw))


def test_good_file_is_read_once_and_moved_to_done(tmp_path: Path) -> None:
    source = make(tmp_path)
    write_jpeg(source.path / "a.jpg", level=201)
    (captured,) = take(source, 1)
    assert captured.source == "a.jpg"
    assert captured.image.shape == (120, 80, 3)
    assert abs(float(captured.image.mean()) - 201) < 2
    assert captured.key is not None and captured.key.startswith("a.jpg:")
    captured.settle("done")
    assert (source.done_dir / "a.jpg").is_file()
    assert not (source.path / "a.jpg").exists()
    assert take(source, 1, timeout=0.3) == []


def test_broken_files_go_to_failed_with_a_reason_and_the_source_keeps_going(
    tmp_path: Path, caplog
) -> None:
    source = make(tmp_path)
    data = write_jpeg(source.path / "truncated.jpg")
    (source.path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (source.path / "notes.txt").write_text("not a receipt")
    (source.path / "empty.png").write_bytes(b"")
    write_jpeg(source.path / "good.jpg")
    captures = take(source, 1)
    assert [c.source for c in captures] == ["good.jpg"]
    for name in ("truncated.jpg", "notes.txt", "empty.png"):
        kept = source.failed_dir / name
        assert kept.is_file(), f"{name} is kept in failed/"
        reason = (source.failed_dir / f"{name}.reason.txt").read_text()
        assert reason.strip(), f"{name} has a reason"
    assert "truncated.jpg" in caplog.text and "failed" in caplog.text
    assert (source.failed_dir / "truncated.jpg").read_bytes() == data[: len(data) // 2]


def test_settle_failed_and_retry(tmp_path: Path) -> None:
    source = make(tmp_path, retry_after_s=0.3)
    write_jpeg(source.path / "x.jpg")
    (first,) = take(source, 1)
    first.settle("retry", "outbox full")
    assert (source.path / "x.jpg").is_file(), "a retried file stays in place"
    (again,) = take(source, 1, timeout=3)
    again.settle("failed", "reading failed: boom")
    assert (source.failed_dir / "x.jpg.reason.txt").read_text() == "reading failed: boom\n"


def test_a_file_still_being_written_waits_until_stable(tmp_path: Path) -> None:
    source = make(tmp_path, settle_s=0.5)
    path = source.path / "slow.jpg"
    data = write_jpeg(path)
    stop = threading.Event()
    got: list[Capture] = []

    def consume() -> None:
        got.extend(c for c in source.captures(stop))

    thread = threading.Thread(target=consume)
    thread.start()
    # keep "writing" for a while: the size changes every 0.2 s
    for i in range(5):
        path.write_bytes(data[: len(data) // 2 + i])
        stop.wait(0.2)
        assert got == [], "not read while still changing"
    path.write_bytes(data)
    stop.wait(1.5)
    stop.set()
    thread.join(5)
    assert len(got) == 1
    assert got[0].image.shape == (120, 80, 3)


def test_name_collision_in_done_keeps_both(tmp_path: Path) -> None:
    source = make(tmp_path)
    for _ in range(2):
        write_jpeg(source.path / "same.jpg")
        (c,) = take(source, 1)
        c.settle("done")
    assert len(list(source.done_dir.glob("same*.jpg"))) == 2
