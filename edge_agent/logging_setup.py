"""The scanner agent's logs: JSON lines (journald, log shippers) or text, rotated by size.

Configured by the `logging:` section of the agent's config. Each record carries the
scanner's `device_id`, and the `receipt_id` being handled when code sets it with
`receipt_context(...)`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

from pydantic import Field

from edge_agent.configbase import ConfigPath, StrictModel

receipt_id: ContextVar[str | None] = ContextVar("agent_receipt_id", default=None)

_OURS = "_rm_agent_installed"


class LoggingConfig(StrictModel):
    """`logging:` of agent.yaml."""

    format: Literal["auto", "json", "text"] = Field(
        default="auto", description="JSON lines or text; auto: text on a terminal."
    )
    file: ConfigPath | None = Field(default=None, description="Also log (JSON) to this file.")
    max_bytes: int = Field(default=5 << 20, ge=1024, description="Rotate the file at this size.")
    backup_count: int = Field(default=3, ge=0, description="Rotated files kept.")


@contextlib.contextmanager
def receipt_context(rid: str) -> Iterator[None]:
    token = receipt_id.set(rid)
    try:
        yield
    finally:
        receipt_id.reset(token)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "device_id", "receipt_id"?, "exc"?}` per line."""

    def __init__(self, device_id: str | None = None) -> None:
        super().__init__()
        self.device_id = device_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.device_id:
            entry["device_id"] = self.device_id
        if (rid := receipt_id.get()) is not None:
            entry["receipt_id"] = rid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    config: LoggingConfig, device_id: str | None = None, *, tty: bool | None = None
) -> None:
    """Replace the root's console handler by ours, and add the rotated file if configured."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
            handler.close()
    fmt = config.format
    if fmt == "auto":
        fmt = "text" if (sys.stderr.isatty() if tty is None else tty) else "json"
    stream = logging.StreamHandler()
    stream.setFormatter(
        JsonFormatter(device_id)
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = [stream]
    if config.file is not None:
        config.file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            config.file,
            maxBytes=config.max_bytes,
            backupCount=config.backup_count,
            encoding="utf-8",
        )
        rotating.setFormatter(JsonFormatter(device_id))
        handlers.append(rotating)
    for handler in handlers:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
