"""The capture interface: a source yields `Capture`s; the agent settles each one it reads.

Contract of a `Source`:

- `captures(stop)` SHALL yield captures until `stop` is set (checking it at least every
  second) or the source has nothing more (a video file that ended); it SHALL NOT raise for a
  single bad frame or file: it logs it and goes on.
- A live source (`live` true: cameras) yields every frame; the agent passes them through the
  placement trigger. A still source (a watched folder) yields one capture per image to read.
- The agent calls `Capture.settle` once per capture it took: ``done`` (stored in the outbox),
  ``failed`` with a reason (it could not be read) or ``retry`` (not now, e.g. the outbox is full).
- `state` says how the source is doing, for telemetry (e.g. ``ok``, ``error: ...``).
- `close()` releases the device; it MAY be called twice.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

Outcome = Literal["done", "failed", "retry"]


class SourceUnavailable(RuntimeError):
    """A configured source can't be used here (missing library, no such device); says why."""


def _no_settle(outcome: Outcome, reason: str) -> None:
    return None


@dataclass(frozen=True)
class Capture:
    """One frame or image from a source."""

    image: np.ndarray  # BGR, uint8
    source: str  # where it came from, for logs and the receipt message (e.g. a file name)
    captured_at: dt.datetime
    key: str | None = None  # identifies a still (file) across restarts, for exactly-once reading
    on_settle: Callable[[Outcome, str], None] = field(default=_no_settle, repr=False)

    def settle(self, outcome: Outcome, reason: str = "") -> None:
        self.on_settle(outcome, reason)


class Source(Protocol):
    """Something that produces images: a watched folder, a camera, a video file."""

    @property
    def live(self) -> bool: ...

    @property
    def state(self) -> str: ...

    def captures(self, stop: threading.Event) -> Iterator[Capture]: ...

    def close(self) -> None: ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
