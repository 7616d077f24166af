"""Feedback at the counter: a scan button, a status LED with patterns, and a buzzer (gpiozero).

- The **LED** shows the scanner's state: ``ready`` steady on; ``reading`` fast blink (5 Hz);
  ``offline`` a short flash every 2 s (scanning goes on, the outbox holds the receipts);
  ``error`` a slow blink (1 Hz) until the state changes; ``off``.
- The **buzzer** confirms: one short beep when a receipt was read, two when it must be
  rescanned (blurred, cut off), one long beep on an error.
- The **button** asks for a scan (`on_scan`); held for `hold_s` it calls `on_hold` (the agent
  maps it to "rescan last" or a diagnostics upload).

Pins are BCM numbers from `GpioConfig`; any part can be left out (``None``). gpiozero picks the
pin library on a Pi (lgpio on Bookworm); tests set ``Device.pin_factory = MockFactory()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)


class LedState(StrEnum):
    OFF = "off"
    READY = "ready"
    READING = "reading"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass(frozen=True)
class Blink:
    """On for `on_s`, off for `off_s`, repeated; `off_s` 0 means steady on."""

    on_s: float
    off_s: float


#: What each state looks like.
PATTERNS: dict[LedState, Blink | None] = {
    LedState.OFF: None,
    LedState.READY: Blink(1.0, 0.0),
    LedState.READING: Blink(0.1, 0.1),
    LedState.OFFLINE: Blink(0.1, 1.9),
    LedState.ERROR: Blink(0.5, 0.5),
}


@dataclass(frozen=True)
class Beeps:
    """`n` beeps of `on_s` with `off_s` between them."""

    on_s: float
    off_s: float
    n: int


BEEP_OK = Beeps(0.08, 0.0, 1)
BEEP_RESCAN = Beeps(0.08, 0.12, 2)
BEEP_ERROR = Beeps(0.8, 0.0, 1)


class GpioConfig(BaseModel):
    """Wiring of the feedback parts (BCM pin numbers); None leaves a part out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    button_pin: int | None = Field(default=17, ge=0, le=27, description="Scan button (to GND).")
    led_pin: int | None = Field(default=27, ge=0, le=27, description="Status LED (via resistor).")
    buzzer_pin: int | None = Field(default=22, ge=0, le=27, description="Active buzzer.")
    bounce_s: float = Field(default=0.05, ge=0, le=1, description="Button debounce time.")
    hold_s: float = Field(default=3.0, gt=0, le=30, description="Seconds held for on_hold.")

    @model_validator(mode="after")
    def _distinct(self) -> GpioConfig:
        pins = [p for p in (self.button_pin, self.led_pin, self.buzzer_pin) if p is not None]
        if len(pins) != len(set(pins)):
            raise ValueError(f"button_pin, led_pin and buzzer_pin must differ (got {pins})")
        return self


class Feedback:
    """The button, LED and buzzer of one scanner. Close it to release the pins."""

    def __init__(
        self,
        config: GpioConfig,
        on_scan: Callable[[], None] | None = None,
        on_hold: Callable[[], None] | None = None,
    ) -> None:
        from gpiozero import LED, Button, Buzzer

        self.config = config
        self.state = LedState.OFF
        self._led: Any = LED(config.led_pin) if config.led_pin is not None else None
        self._buzzer: Any = Buzzer(config.buzzer_pin) if config.buzzer_pin is not None else None
        self._button: Any = None
        if config.button_pin is not None:
            self._button = Button(
                config.button_pin,
                pull_up=True,
                bounce_time=config.bounce_s or None,
                hold_time=config.hold_s,
            )
            if on_scan is not None:
                self._button.when_pressed = _guard(on_scan, "scan button")
            if on_hold is not None:
                self._button.when_held = _guard(on_hold, "button hold")

    def set_state(self, state: LedState | str) -> None:
        """Show `state` on the LED (a no-op if it is shown already)."""
        state = LedState(state)
        if state is self.state:
            return
        self.state = state
        if self._led is None:
            return
        pattern = PATTERNS[state]
        if pattern is None:
            self._led.off()
        elif pattern.off_s == 0:
            self._led.on()
        else:
            self._led.blink(on_time=pattern.on_s, off_time=pattern.off_s, background=True)

    def beep(self, beeps: Beeps) -> None:
        """Sound `beeps` in the background."""
        if self._buzzer is None:
            return
        self._buzzer.beep(on_time=beeps.on_s, off_time=beeps.off_s or 0.01, n=beeps.n)

    def read_ok(self) -> None:
        self.beep(BEEP_OK)

    def rescan(self) -> None:
        self.beep(BEEP_RESCAN)

    def error(self) -> None:
        self.set_state(LedState.ERROR)
        self.beep(BEEP_ERROR)

    @property
    def button_pressed(self) -> bool:
        return bool(self._button is not None and self._button.is_pressed)

    def close(self) -> None:
        for device in (self._button, self._led, self._buzzer):
            if device is not None:
                device.close()

    def __enter__(self) -> Feedback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _guard(callback: Callable[[], None], what: str) -> Callable[[], None]:
    """Run a callback on gpiozero's thread without letting an exception kill that thread."""

    def run() -> None:
        try:
            callback()
        except Exception:
            log.exception("%s handler failed", what)

    return run
