"""Diagnostics for the ``upload_diagnostics`` command: a bounded JSON snapshot of the scanner.

`RingLogHandler` keeps the last N formatted log lines in memory (no disk writes on an SD card).
`bounded(snapshot, log_lines, limit)` returns the snapshot with as many of the most recent log
lines as fit, each line cut to `MAX_LINE_CHARS`, so that the command result stays under the
protocol's 64 KiB message limit however chatty the log was.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from typing import Any

#: The diagnostics blob (inside the command result) never exceeds this many bytes of JSON.
DIAGNOSTICS_MAX_BYTES = 48 << 10
MAX_LINE_CHARS = 400


class RingLogHandler(logging.Handler):
    """Keeps the last `capacity` log lines in memory."""

    def __init__(self, capacity: int = 200, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._lines: collections.deque[str] = collections.deque(maxlen=max(1, capacity))
        self._ring_lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken log call must not break the caller
            self.handleError(record)
            return
        with self._ring_lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._ring_lock:
            return list(self._lines)


def bounded(
    snapshot: dict[str, Any], log_lines: list[str], limit: int = DIAGNOSTICS_MAX_BYTES
) -> dict[str, Any]:
    """`snapshot` plus ``log`` (most recent lines that fit) and ``log_dropped``; ≤ `limit` bytes."""
    lines = [ln if len(ln) <= MAX_LINE_CHARS else ln[:MAX_LINE_CHARS] + "…" for ln in log_lines]
    base = json.dumps(snapshot, default=str)
    budget = limit - len(base.encode()) - 64
    if budget < 0:  # the snapshot alone is too big: keep its top-level keys as text
        snapshot = {"truncated": base[: max(0, limit - 200)]}
        budget = 0
    kept: list[str] = []
    for line in reversed(lines):
        cost = len(json.dumps(line).encode()) + 2
        if cost > budget:
            break
        budget -= cost
        kept.append(line)
    kept.reverse()
    return {**snapshot, "log": kept, "log_dropped": len(lines) - len(kept)}


def snapshot(agent: Any) -> dict[str, Any]:
    """The state of a running `edge_agent.agent.Agent`, JSON-ready (without the log)."""
    import platform
    import sys

    from edge_agent import __version__

    stats = agent.outbox.stats()
    shadow = agent.shadow
    scanner = agent.scanner
    return {
        "device_id": agent.device_id,
        "agent_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "model_versions": scanner.model_versions,
        "releases": agent.updater.releases() if agent.updater is not None else {},
        "ota": agent.updater.status() if agent.updater is not None else None,
        "models_dir": str(agent.models_dir) if agent.models_dir else None,
        "config_version": shadow.version,
        "config_overrides": {k: str(v) for k, v in shadow.overrides.items()},
        "config_rejected": shadow.rejected,
        "config": agent.config.model_dump(mode="json"),
        "outbox": {
            "depth": stats.depth,
            "bytes": stats.bytes,
            "receipts": stats.receipts,
            "admission": agent.outbox.admission(),
        },
        "link": {
            "connected_since": agent.link.connected_since,
            "published": agent.link.published,
        },
        "scans": {
            "total": scanner.scans_total,
            "failed": scanner.scans_failed,
            "refused": scanner.scans_refused,
            "last_read_ms": scanner.last_read_ms,
        },
        "source": agent.source.state,
        "trigger": agent.trigger.state if agent.trigger is not None else None,
        "quiet_hours_now": agent.loop.quiet,
        "telemetry": agent.telemetry().model_dump(mode="json"),
    }
