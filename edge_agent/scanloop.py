"""The scanning thread: takes captures from the source and decides which ones are read.

`ScanLoop.run(scan)` runs on the agent's main thread until the stop event is set or
the source has nothing more (then it idles, so the outbox keeps draining, until stopped). Each
capture goes through three gates before `scan` (the `edge_agent.scanner.Scanner`) reads it:

- **quiet hours**: nothing is taken; a still that arrives meanwhile is settled ``retry``;
- **outbox room** (still sources only): while the outbox is full no file is taken, so files stay
  in the folder instead of being read and refused; a live camera keeps running its trigger;
- **placement trigger** (live sources): only the still it picks is read, unless the scan button
  asked for the next frame as it is (`press`).

The stop event is a `PulseEvent`: each check of it from the scanning thread is a sign of life
(`tick`: systemd watchdog kick, LED state, the updater's health clock). Every source checks its
stop event at least once a second, so a scanning thread that hangs stops kicking the watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge_agent.capture import Capture, Source
from edge_agent.config import AgentConfig
from edge_agent.outbox import Outbox
from edge_agent.signals import DeviceSignals
from edge_agent.trigger import PlacementTrigger
from firmware.gpio import LedState

if TYPE_CHECKING:
    from edge_agent.ota.updater import Updater

log = logging.getLogger(__name__)

#: Seconds between two signs of life (watchdog kick, LED state) from the scanning thread.
TICK_S = 0.5
#: Reads one capture (its image, or the still the trigger took); the receipt id or None.
Scan = Callable[[Capture, np.ndarray], object]


class Link(Protocol):
    """The part of the MQTT link the LED shows."""

    @property
    def connected(self) -> bool: ...


class PulseEvent(threading.Event):
    """The agent's stop event: each check from the owner thread calls `pulse` (a sign of life)."""

    def __init__(self) -> None:
        super().__init__()
        self.pulse: Callable[[], None] = lambda: None
        self.owner: int | None = None

    def is_set(self) -> bool:
        if threading.get_ident() == self.owner:
            self.pulse()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.get_ident() == self.owner:
            self.pulse()
        return super().wait(timeout)


class ScanLoop:
    """The gates between a source and the scanner; see the module docstring."""

    def __init__(
        self,
        stop: PulseEvent,
        *,
        config: Callable[[], AgentConfig],
        source: Source,
        outbox: Outbox,
        link: Link,
        signals: DeviceSignals,
        trigger: PlacementTrigger | None,
        updater: Updater | None,
    ) -> None:
        self.stop = stop
        self._config = config
        self.source = source
        self.outbox = outbox
        self.link = link
        self.signals = signals
        self.trigger = trigger
        self.updater = updater
        self.refusing = False
        self.quiet = False
        self._force = threading.Event()
        self._last_tick = 0.0
        stop.pulse = self.tick

    def run(self, scan: Scan) -> None:
        """Scan from the source until stopped (blocks; call from the scanning thread)."""
        self.stop.owner = threading.get_ident()
        self._loop(self.source.captures(self.stop), scan)

    def press(self) -> None:
        """The scan button: a live source takes its next frame as a scan."""
        if self.trigger is None:
            log.info("scan button: the %s source is not a camera; hold to rescan", self.source)
            return
        self._force.set()

    def _idle(self, seconds: float | None = None) -> None:
        """Wait `seconds` (None: until stopped) while staying visibly alive."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.stop.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return
            self.stop.wait(left)

    def _loop(self, captures: Iterator[Capture], scan: Scan) -> None:
        while not self.stop.is_set():
            if self._quiet_now() or (self.trigger is None and not self._accepting()):
                self._idle(1.0)
                continue
            capture = next(captures, None)
            if capture is None:
                if not self.stop.is_set():
                    log.info("source has no more images; delivering until stopped")
                    self._idle()
                return
            if self._quiet_now():  # quiet hours began while the source was waiting
                capture.settle("retry", "quiet hours")
                continue
            image = capture.image
            if self.trigger is not None:
                if self._force.is_set():  # the scan button: take this frame as it is
                    self._force.clear()
                    log.info("scan button: frame taken without waiting for the trigger")
                else:
                    still = self.trigger.update(capture.image)
                    if still is None:
                        continue
                    image = still
            scan(capture, image)

    def _accepting(self) -> bool:
        full = self.outbox.admission() == "full"
        if full and not self.refusing:
            log.error("outbox full: not taking new scans until it drains (files stay in place)")
        elif not full and self.refusing:
            log.info("outbox has room again: scanning resumed")
        self.refusing = full
        return not full

    def _quiet_now(self) -> bool:
        hours = self._config().quiet_hours
        quiet = hours is not None and hours.active()
        if quiet != self.quiet:
            log.info("quiet hours %s", "begin: no scanning, no buzzer" if quiet else "over")
            self.quiet = self.signals.quiet = quiet
            if not quiet and self.trigger is not None:
                self.trigger.reset()  # the scene may have changed meanwhile
        return quiet

    def tick(self) -> None:
        """Sign of life of the scanning thread: watchdog, LED state, OTA health."""
        now = time.monotonic()
        if now - self._last_tick < TICK_S:
            return
        self._last_tick = now
        self.signals.alive()
        self.signals.show(self.led_state())
        if self.updater is not None:
            self.updater.mark_healthy()

    def led_state(self) -> LedState:
        """What the LED shows when no scan is being read."""
        if self.quiet:
            return LedState.OFF
        if self.refusing or self.source.state.startswith("error"):
            return LedState.ERROR
        return LedState.READY if self.link.connected else LedState.OFFLINE
