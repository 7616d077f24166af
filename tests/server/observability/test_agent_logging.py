"""The scanner agent's logs: the `logging:` config section, JSON lines with device and receipt."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, parse_config
from edge_agent.logging_setup import configure_logging, receipt_context


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def config(tmp_path: Path, logging_section: object) -> dict[str, object]:
    return {
        "device_id": "scan-9",
        "source": {"type": "folder", "path": str(tmp_path)},
        "logging": logging_section,
    }


def test_agent_logs_json_with_device_and_receipt_rotated(
    tmp_path: Path, restore_logging: None
) -> None:
    cfg = parse_config(
        config(
            tmp_path,
            {"format": "json", "file": "logs/agent.log", "max_bytes": 1024, "backup_count": 1},
        ),
        base_dir=tmp_path,
    )
    assert cfg.logging.file == tmp_path / "logs" / "agent.log"
    configure_logging(cfg.logging, cfg.device_id)
    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("edge_agent.test")
    with receipt_context("r-42"):
        log.info("published")
    entry = json.loads((tmp_path / "logs" / "agent.log").read_text().splitlines()[0])
    assert entry["device_id"] == "scan-9" and entry["receipt_id"] == "r-42"
    assert entry["message"] == "published" and entry["level"] == "INFO"
    for i in range(100):
        log.info("line %d padding padding padding", i)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["agent.log", "agent.log.1"]


def test_agent_logging_section_refuses_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="logging"):
        parse_config(config(tmp_path, {"format": "xml"}), base_dir=tmp_path)
