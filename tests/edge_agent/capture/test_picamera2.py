"""The picamera2 source says clearly when its library is missing."""

from __future__ import annotations

import importlib.util

import pytest

from edge_agent.capture import Picamera2Source, Picamera2SourceConfig, SourceUnavailable


@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here"
)
def test_missing_picamera2_disables_the_source_with_a_clear_message(caplog) -> None:
    with pytest.raises(SourceUnavailable, match="apt install python3-picamera2"):
        Picamera2Source(Picamera2SourceConfig(type="picamera2"))
    assert "picamera2" in caplog.text
