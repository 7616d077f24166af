"""Build training batches in a background thread while the model trains on the previous ones."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield from `items`, produced ahead by a daemon thread (PIL and OpenCV release the GIL).

    An exception in the producer is raised in the consumer, not lost.
    """
    q: queue.Queue[tuple[bool, T | BaseException]] = queue.Queue(maxsize=depth)

    def fill() -> None:
        try:
            for item in items:
                q.put((True, item))
        except BaseException as exc:  # handed to the consumer
            q.put((False, exc))

    threading.Thread(target=fill, daemon=True).start()
    while True:
        ok, value = q.get()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        yield value  # type: ignore[misc]
