"""What the agent tells systemd (ready, alive) and the person at the counter (LED, buzzer).

`DeviceSignals` wraps `firmware.sdnotify` (``READY=1`` once the agent runs, ``WATCHDOG=1`` from
the scanning thread, ``STOPPING=1``) and, when the config has a ``gpio:`` section,
`firmware.gpio.Feedback`: the LED follows the agent's state (ready / reading / offline / error;
off in quiet hours), the buzzer confirms a read (one beep) or asks for a rescan (two), the
button asks for a scan and, held, for "rescan last". Outside systemd, or without a ``gpio:``
section, each signal is a no-op; GPIO that can't be opened (no gpiozero, not a Pi) is logged and
left out, and the scanner runs on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from firmware.gpio import BEEP_ERROR, BEEP_OK, BEEP_RESCAN, Beeps, Feedback, GpioConfig, LedState
from firmware.sdnotify import Watchdog, notify_ready, notify_stopping

log = logging.getLogger(__name__)

BEEPS: dict[str, Beeps] = {"ok": BEEP_OK, "rescan": BEEP_RESCAN, "error": BEEP_ERROR}

FeedbackFactory = Callable[..., Feedback]


class DeviceSignals:
    """systemd notifications and the optional button, LED and buzzer of one scanner."""

    def __init__(
        self,
        gpio: GpioConfig | None,
        *,
        on_scan: Callable[[], None] | None = None,
        on_hold: Callable[[], None] | None = None,
        watchdog: Watchdog | None = None,
        feedback_factory: FeedbackFactory = Feedback,
    ) -> None:
        self.watchdog = watchdog or Watchdog()
        self.feedback: Feedback | None = None
        self.quiet = False
        self._testing = threading.Lock()
        if gpio is not None:
            try:
                self.feedback = feedback_factory(gpio, on_scan=on_scan, on_hold=on_hold)
            except Exception as exc:  # no gpiozero, no pin library, pin busy
                log.error(
                    "GPIO feedback (gpio: section) unavailable: %s: %s; scanning without "
                    "button, LED and buzzer",
                    type(exc).__name__,
                    exc,
                )
        if self.watchdog.interval_s is not None:
            log.info("systemd watchdog: kicking every %.1f s", self.watchdog.interval_s)

    # ------------------------------------------------------------------ systemd

    def ready(self) -> None:
        if notify_ready("scanning"):
            log.info("told systemd the agent is ready")

    def alive(self) -> None:
        self.watchdog.kick()

    # ------------------------------------------------------------------ counter

    def show(self, state: LedState) -> None:
        """Show the agent's state on the LED (not while a feedback test runs)."""
        if self.feedback is None or self._testing.locked():
            return
        self.feedback.set_state(state)

    def beep(self, name: str) -> None:
        if self.feedback is not None and not self.quiet:
            self.feedback.beep(BEEPS[name])

    def feedback_test(
        self, states: Sequence[LedState], beeps: Sequence[str], step_s: float
    ) -> dict[str, Any]:
        """Show each LED pattern and sound each signal for `step_s`; LookupError without GPIO."""
        if self.feedback is None:
            raise LookupError("this scanner has no LED or buzzer (no working gpio: section)")
        with self._testing:
            before = self.feedback.state
            for state in states:
                self.feedback.set_state(state)
                time.sleep(step_s)
            for name in beeps:
                self.feedback.beep(BEEPS[name])
                time.sleep(step_s)
            self.feedback.set_state(before)
        return {
            "states": [str(s) for s in states],
            "beeps": list(beeps),
            "led": self.feedback.config.led_pin is not None,
            "buzzer": self.feedback.config.buzzer_pin is not None,
        }

    def close(self) -> None:
        notify_stopping()
        if self.feedback is not None:
            self.feedback.set_state(LedState.OFF)
            self.feedback.close()
