"""Watched-folder source: each image dropped in a folder is read once, then moved away.

A file is taken once its size and modification time have not changed for `settle_s` (so a file
still being copied is not read half-written). Hidden files and names ending in `.part`, `.tmp`
or `.crdownload` are ignored. After the agent settles a capture the file moves to `done/`, or
to `failed/` with a `<name>.reason.txt` beside it; a file that can't be decoded (truncated, not
an image) goes to `failed/` at once, with a log line, and the source keeps watching. A file the
agent can't take now (outbox full) stays where it is and is tried again later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from edge_agent.capture.base import Capture, Outcome, utcnow
from edge_agent.configbase import ConfigPath, StrictModel

log = logging.getLogger(__name__)

_IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".reason.txt")

Loader = Callable[[Path], np.ndarray]


class FolderSourceConfig(StrictModel):
    """Read receipt images dropped into a folder (a phone sync folder, a flatbed's output)."""

    type: Literal["folder"] = Field(description="Selects the watched-folder source.")
    path: ConfigPath = Field(description="Folder to watch; created if missing.")
    done_dir: ConfigPath | None = Field(
        default=None, description="Where read files go (default: <path>/done)."
    )
    failed_dir: ConfigPath | None = Field(
        default=None,
        description="Where unreadable files go, with a reason (default: <path>/failed).",
    )
    poll_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Seconds between looks at the folder."
    )
    settle_s: float = Field(
        default=1.0, ge=0, le=600, description="A file must be unchanged this long to be read."
    )
    retry_after_s: float = Field(
        default=10.0, gt=0, description="Wait before retrying a file the agent could not take."
    )


def _default_loader(path: Path) -> np.ndarray:
    from models.imageio import load_image

    return load_image(path)


def _load_errors() -> tuple[type[Exception], ...]:
    from models.imageio import ImageError

    return (ImageError, OSError, ValueError)


class FolderSource:
    """Yields one capture per stable file in the folder; moves it once settled."""

    live = False

    def __init__(self, config: FolderSourceConfig, loader: Loader | None = None) -> None:
        self.config = config
        self.path = config.path
        self.done_dir = config.done_dir or self.path / "done"
        self.failed_dir = config.failed_dir or self.path / "failed"
        for d in (self.path, self.done_dir, self.failed_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._loader = loader or _default_loader
        self._errors = _load_errors() if loader is None else (Exception,)
        self._seen: dict[Path, tuple[tuple[int, int], float]] = {}
        self._retry_at: dict[Path, float] = {}
        self._taken: set[Path] = set()  # yielded, not settled yet: never yielded twice
        self.state = "ok"

    def captures(self, stop: threading.Event) -> Iterator[Capture]:
        log.info("watching folder %s (read files go to %s)", self.path, self.done_dir)
        while not stop.is_set():
            for path in self._ready_files():
                if stop.is_set():
                    return
                capture = self._load(path)
                if capture is not None:
                    yield capture
            stop.wait(self.config.poll_interval_s)

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ internals

    def _ready_files(self) -> list[Path]:
        now = time.monotonic()
        ready: list[tuple[int, Path]] = []
        present: set[Path] = set()
        try:
            entries = list(os.scandir(self.path))
            self.state = "ok"
        except OSError as exc:
            self.state = f"error: {exc}"
            log.error("cannot list watched folder %s: %s", self.path, exc)
            return []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                continue
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:  # vanished between listing and stat
                continue
            path = Path(entry.path)
            present.add(path)
            signature = (st.st_size, st.st_mtime_ns)
            previous = self._seen.get(path)
            if previous is None or previous[0] != signature:
                self._seen[path] = (signature, now)
                if self.config.settle_s > 0:
                    continue
            elif now - previous[1] < self.config.settle_s:
                continue
            if path in self._taken or self._retry_at.get(path, 0.0) > now:
                continue
            ready.append((st.st_mtime_ns, path))
        for gone in set(self._seen) - present:
            self._seen.pop(gone, None)
            self._retry_at.pop(gone, None)
        return [p for _, p in sorted(ready)]

    def _load(self, path: Path) -> Capture | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = f"{path.name}:{st.st_size}:{st.st_mtime_ns}"
        if st.st_size == 0:
            self._fail(path, "empty file (0 bytes): not an image")
            return None
        try:
            image = self._loader(path)
        except self._errors as exc:
            self._fail(path, f"cannot read image: {exc}")
            return None

        def settle(outcome: Outcome, reason: str) -> None:
            self._taken.discard(path)
            self._settle(path, outcome, reason)

        self._taken.add(path)
        return Capture(image, path.name, utcnow(), key=key, on_settle=settle)

    def _settle(self, path: Path, outcome: Outcome, reason: str) -> None:
        if outcome == "done":
            dest = self._move(path, self.done_dir)
            log.debug("file %s moved to %s", path.name, dest)
        elif outcome == "failed":
            self._fail(path, reason)
        else:
            self._retry_at[path] = time.monotonic() + self.config.retry_after_s
            log.info(
                "file %s left in place, retry in %.0f s: %s",
                path.name,
                self.config.retry_after_s,
                reason,
            )

    def _fail(self, path: Path, reason: str) -> None:
        dest = self._move(path, self.failed_dir)
        if dest is None:
            return
        reason_file = dest.with_name(dest.name + ".reason.txt")
        reason_file.write_text(reason.rstrip() + "\n", encoding="utf-8")
        log.error("file %s failed, moved to %s: %s", path.name, dest, reason)

    def _move(self, path: Path, directory: Path) -> Path | None:
        dest = directory / path.name
        if dest.exists():
            dest = directory / f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}"
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            log.warning("file %s disappeared before it could be moved to %s", path, directory)
            return None
        self._seen.pop(path, None)
        self._retry_at.pop(path, None)
        return dest
