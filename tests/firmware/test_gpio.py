"""Button, LED patterns and buzzer on gpiozero's mock pins, checked over time."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from firmware.gpio import Feedback, GpioConfig, LedState


@pytest.fixture
def pins():
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def _levels(pin) -> list[bool]:
    return [bool(s.state) for s in pin.states]


def _durations(pin) -> list[tuple[bool, float]]:
    """(level, seconds it lasted) for each completed level change after the first."""
    states = pin.states
    return [(bool(states[i].state), states[i + 1].timestamp) for i in range(1, len(states) - 1)]


def test_ready_is_steady_and_off_is_off(pins) -> None:
    with Feedback(GpioConfig()) as fb:
        led = pins.pin(27)
        fb.set_state(LedState.READY)
        assert led.state
        time.sleep(0.3)
        assert _levels(led) == [False, True]
        fb.set_state("off")
        assert not led.state


@pytest.mark.parametrize(
    ("state", "on_s", "off_s", "watch_s"),
    [(LedState.READING, 0.1, 0.1, 0.75), (LedState.ERROR, 0.5, 0.5, 1.6)],
)
def test_blinking_patterns_have_their_timing(pins, state, on_s, off_s, watch_s) -> None:
    with Feedback(GpioConfig()) as fb:
        led = pins.pin(27)
        led.clear_states()
        fb.set_state(state)
        time.sleep(watch_s)
        durations = _durations(led)
        assert len(durations) >= 3
        for level, seconds in durations:
            assert seconds == pytest.approx(on_s if level else off_s, abs=0.06)


def test_offline_is_a_short_flash_every_two_seconds(pins) -> None:
    with Feedback(GpioConfig()) as fb:
        led = pins.pin(27)
        led.clear_states()
        fb.set_state(LedState.OFFLINE)
        time.sleep(2.3)
        durations = _durations(led)
        on = [s for level, s in durations if level]
        off = [s for level, s in durations if not level]
        assert on and off
        assert all(s == pytest.approx(0.1, abs=0.06) for s in on)
        assert all(s == pytest.approx(1.9, abs=0.1) for s in off)


def test_beeps(pins) -> None:
    with Feedback(GpioConfig()) as fb:
        buzzer = pins.pin(22)
        buzzer.clear_states()
        fb.rescan()
        time.sleep(0.5)
        assert _levels(buzzer) == [False, True, False, True, False]
        buzzer.clear_states()
        fb.error()
        assert fb.state is LedState.ERROR
        time.sleep(1.0)
        assert _levels(buzzer) == [False, True, False]
        assert buzzer.states[2].timestamp == pytest.approx(0.8, abs=0.08)


def test_button_press_scans_and_hold_calls_on_hold(pins) -> None:
    scans, holds = threading.Semaphore(0), threading.Semaphore(0)
    config = GpioConfig(bounce_s=0, hold_s=0.2)
    with Feedback(config, on_scan=scans.release, on_hold=holds.release) as fb:
        button = pins.pin(17)
        button.drive_low()  # pressed: the button pulls the pin to ground
        assert scans.acquire(timeout=2)
        assert fb.button_pressed
        assert holds.acquire(timeout=2)
        button.drive_high()
        assert not fb.button_pressed


def test_a_failing_handler_does_not_break_the_button(pins, caplog) -> None:
    calls = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("camera gone")

    with Feedback(GpioConfig(bounce_s=0), on_scan=boom):
        button = pins.pin(17)
        for _ in range(2):
            button.drive_low()
            time.sleep(0.05)
            button.drive_high()
            time.sleep(0.05)
    assert len(calls) == 2
    assert "scan button handler failed" in caplog.text


def test_parts_can_be_left_out_and_pins_must_differ(pins) -> None:
    with Feedback(GpioConfig(buzzer_pin=None, button_pin=None)) as fb:
        fb.read_ok()  # no buzzer: nothing to do
        fb.set_state(LedState.READY)
        assert pins.pin(27).state
    with pytest.raises(ValueError, match="must differ"):
        GpioConfig(led_pin=17)
