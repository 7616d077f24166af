"""systemd's notify protocol without libsystemd: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

The agent's unit is ``Type=notify`` with ``WatchdogSec=``: the agent calls `notify_ready()` once
it runs, then `Watchdog.kick()` from its main loop (at most every `interval_s`, half the
watchdog period systemd gives in ``WATCHDOG_USEC``). If the loop hangs, systemd kills and
restarts the agent; if systemd itself hangs, the hardware watchdog (``RuntimeWatchdogSec`` in
firmware/systemd/watchdog.conf) resets the Pi. Outside systemd (no ``NOTIFY_SOCKET``) every
call is a no-op that returns False.
"""

from __future__ import annotations

import os
import socket
import time


def notify(*fields: str) -> bool:
    """Send ``KEY=value`` lines to systemd; True if a notify socket was there."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(fields).encode("utf-8"))
    return True


def notify_ready(status: str = "scanning") -> bool:
    return notify("READY=1", f"STATUS={status}")


def notify_stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_interval_s() -> float | None:
    """Half the watchdog period systemd asked for, or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


class Watchdog:
    """Rate-limited ``WATCHDOG=1``: call `kick()` as often as you like from the main loop."""

    def __init__(self, interval_s: float | None = None) -> None:
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s()
        self._last = float("-inf")

    def kick(self) -> bool:
        """Tell systemd the agent is alive; True when a message was sent."""
        if self.interval_s is None:
            return False
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return notify("WATCHDOG=1")
