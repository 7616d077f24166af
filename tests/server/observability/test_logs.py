"""Structured logs: JSON lines with the request/receipt/device context, rotated by size."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from models.logs import JsonFormatter, configure_logging, log_context, make_formatter
from server.api.app import create_app
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.conftest import Db


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


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_carry_the_context_and_rotate_by_size_and_count(
    tmp_path: Path, restore_logging: None
) -> None:
    log_file = tmp_path / "logs" / "server.log"
    configure_logging("text", level="INFO", log_file=log_file, max_bytes=2048, backup_count=2)
    log = logging.getLogger("rm.test")
    with log_context(receipt_id="r-1", device_id="scan-7"):
        log.info("stored receipt %s", "r-1")
    log.warning("no context")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second, third = lines(log_file)
    assert first["message"] == "stored receipt r-1"
    assert (first["level"], first["logger"]) == ("INFO", "rm.test")
    assert (first["receipt_id"], first["device_id"]) == ("r-1", "scan-7")
    assert str(first["ts"]).endswith("+00:00")
    assert "receipt_id" not in second and "request_id" not in second
    assert "ValueError: boom" in str(third["exc"])

    for i in range(200):
        log.info("filler line %d with some words to fill the file", i)
    rotated = sorted(p.name for p in log_file.parent.iterdir())
    assert rotated == ["server.log", "server.log.1", "server.log.2"]  # count kept at 2
    assert all(p.stat().st_size <= 2048 for p in log_file.parent.iterdir())
    assert lines(log_file)[-1]["message"] == "filler line 199 with some words to fill the file"


def test_text_on_a_terminal_json_elsewhere() -> None:
    assert isinstance(make_formatter("auto", tty=False), JsonFormatter)
    assert not isinstance(make_formatter("auto", tty=True), JsonFormatter)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with log_context(request_id="req-9"):
        assert make_formatter("text").format(record).endswith("hello [request_id=req-9]")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_request_logs_with_its_request_id(
    db: Db, store: LocalImageStore, tmp_path: Path, restore_logging: None
) -> None:
    log_file = tmp_path / "api.log"
    configure_logging("json", level="INFO", log_file=log_file)
    app = create_app(Settings(database_url=db.url), engine=db.engine, images=store)

    def noisy() -> dict[str, str]:
        logging.getLogger("rm.endpoint").info("handling")
        return {}

    app.add_api_route("/noisy", noisy)
    with TestClient(app) as client:
        rid = client.get("/noisy").headers["x-request-id"]
        client.get("/noisy", headers={"X-Request-ID": "from-the-proxy"})
    handled = [e for e in lines(log_file) if e["logger"] == "rm.endpoint"]
    assert [e["request_id"] for e in handled] == [rid, "from-the-proxy"]
