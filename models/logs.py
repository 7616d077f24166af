"""Structured logs of every process (server, ingest, scanner agent): one JSON object per line,
with the request, receipt and device in context.

`configure_logging` installs the handlers once at process start (stderr, plus a size-rotated
file when configured); `static` values (a scanner's device id) go on every record. Code that
knows which request, receipt or device it works for sets it with `log_context(...)`; every
record logged inside carries it, in JSON as top-level keys. It lives in `models` because that
is the package both the scanner and the server install.
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
from pathlib import Path
from typing import Literal

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
receipt_id: ContextVar[str | None] = ContextVar("receipt_id", default=None)
device_id: ContextVar[str | None] = ContextVar("device_id", default=None)

_CONTEXT = {"request_id": request_id, "receipt_id": receipt_id, "device_id": device_id}
#: Values set by `configure_logging(static=...)` for the whole process.
_static: dict[str, str] = {}

LogFormat = Literal["auto", "json", "text"]

_OURS = "_rm_installed"


@contextlib.contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Within the block, records carry `values` (keys: request_id, receipt_id, device_id)."""
    tokens = []
    try:
        for key, value in values.items():
            tokens.append((_CONTEXT[key], _CONTEXT[key].set(value)))
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_context() -> dict[str, str]:
    """The process's static values and the context values set now (only those that are)."""
    return _static | {k: v for k, var in _CONTEXT.items() if (v := var.get()) is not None}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...context, "exc"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(current_context())
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The terminal format, with the context appended as `key=value`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in current_context().items())
        return f"{line} [{extra}]" if extra else line


def make_formatter(fmt: LogFormat, *, tty: bool | None = None) -> logging.Formatter:
    """JSON or text; `auto` is text on a terminal, JSON otherwise (services, containers)."""
    if fmt == "auto":
        fmt = "text" if (sys.stderr.isatty() if tty is None else tty) else "json"
    return TextFormatter() if fmt == "text" else JsonFormatter()


def configure_logging(
    fmt: LogFormat = "auto",
    *,
    level: int | str | None = None,
    log_file: Path | None = None,
    max_bytes: int = 10 << 20,
    backup_count: int = 5,
    static: dict[str, str] | None = None,
    tty: bool | None = None,
) -> None:
    """Replace the root handlers: stderr in `fmt`, and `log_file` (always JSON) rotated by size.

    `level` None keeps the root logger's level (set by `receipts --log-level`).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        # ours from an earlier call, and basicConfig's; others' (pytest's capture) stay
        if getattr(handler, _OURS, False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
            handler.close()
    stream = logging.StreamHandler()
    _static.clear()
    _static.update(static or {})
    stream.setFormatter(make_formatter(fmt, tty=tty))
    setattr(stream, _OURS, True)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        rotating.setFormatter(JsonFormatter())
        setattr(rotating, _OURS, True)
        root.addHandler(rotating)
    if level is not None:
        root.setLevel(level)
