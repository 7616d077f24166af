"""Firmware wiring: READY and WATCHDOG to systemd, LED, button and buzzer (gpiozero mock pins)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge_agent.capture import Capture
from edge_agent.capture.base import utcnow
from firmware.gpio import LedState
from tests.edge_agent.fleethelpers import Server, agent_config
from tests.edge_agent.helpers import QuickReader


class FrameSource:
    """A camera that sees the same empty counter forever."""

    live = True
    state = "ok"

    def captures(self, stop) -> Iterator[Capture]:
        frame = np.full((120, 160, 3), 90, np.uint8)
        while not stop.is_set():
            yield Capture(frame, "camera", utcnow())
            stop.wait(0.05)

    def close(self) -> None:
        return None


@pytest.fixture
def pins():
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "600000")  # kick every 0.3 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield sock
    sock.close()


def received(sock: socket.socket, seconds: float) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(4096))
        except TimeoutError:
            continue
    return out


def test_ready_once_and_watchdog_kicks_while_idle(
    mosquitto, tmp_path: Path, systemd, start_agent
) -> None:
    running = start_agent()  # a watched folder with nothing in it: the loop is idle
    messages = received(systemd, 2.0)
    assert messages[0] == b"READY=1\nSTATUS=scanning"
    assert messages.count(b"READY=1\nSTATUS=scanning") == 1
    assert messages.count(b"WATCHDOG=1") >= 4
    running.stop()
    assert b"STOPPING=1" in received(systemd, 0.5)


def test_led_button_and_buzzer_follow_the_agent(
    mosquitto, tmp_path: Path, pins, server: Server, start_agent
) -> None:
    config = agent_config(
        tmp_path, mosquitto.port, gpio={"button_pin": 17, "led_pin": 27, "buzzer_pin": 22}
    )
    running = start_agent(config, source=FrameSource())
    agent = running.agent
    assert agent.signals.feedback is not None
    led, button, buzzer = pins.pin(27), pins.pin(17), pins.pin(22)
    assert server.sub.wait_for(lambda: agent.signals.feedback.state == LedState.READY, 5)
    assert server.sub.wait_for(lambda: led.state, 2), "the state is set just before the pin"

    buzzer.clear_states()
    button.drive_low()  # pressed: the camera's frame is taken although nothing was placed
    button.drive_high()
    assert server.sub.wait_for(lambda: len(server.receipts()) == 1, 10)
    assert server.receipts()[0]["source"] == "camera"
    assert server.sub.wait_for(lambda: any(s.state for s in buzzer.states), 2), "one beep"

    test = server.command(
        "test_feedback", {"states": ["error", "off"], "beeps": ["rescan"], "step_s": 0.2}
    )
    result = server.final(test)
    assert result.status == "succeeded" and result.output["states"] == ["error", "off"]

    mosquitto.stop()
    assert server.sub.wait_for(lambda: agent.signals.feedback.state == LedState.OFFLINE, 10)
    mosquitto.start()
    assert server.sub.wait_for(lambda: agent.signals.feedback.state == LedState.READY, 15)


def test_missing_gpio_hardware_is_logged_and_scanning_goes_on(
    mosquitto, tmp_path: Path, start_agent, caplog
) -> None:
    config = agent_config(tmp_path, mosquitto.port, gpio={"button_pin": 17})
    previous = Device.pin_factory
    Device.pin_factory = None
    try:
        os.environ["GPIOZERO_PIN_FACTORY"] = "nonexistent"
        running = start_agent(config)
    finally:
        os.environ.pop("GPIOZERO_PIN_FACTORY", None)
        Device.pin_factory = previous
    assert running.agent.signals.feedback is None
    assert "GPIO feedback (gpio: section) unavailable" in caplog.text
    assert isinstance(running.agent.reader, QuickReader)
