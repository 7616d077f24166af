"""sd_notify over a real AF_UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from firmware.sdnotify import Watchdog, notify, notify_ready, watchdog_interval_s


@pytest.fixture
def listener(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_ready_message(listener) -> None:
    assert notify_ready("scanning")
    assert listener.recv(4096) == b"READY=1\nSTATUS=scanning"


def test_watchdog_kicks_at_most_once_per_interval(listener, monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 15.0
    dog = Watchdog()
    assert dog.kick()
    assert not dog.kick()
    assert listener.recv(4096) == b"WATCHDOG=1"


def test_outside_systemd_everything_is_a_no_op(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert not notify("READY=1")
    assert not Watchdog().kick()


def test_watchdog_for_another_process_is_ignored(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval_s() is None
