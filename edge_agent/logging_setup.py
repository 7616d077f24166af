"""The scanner agent's logs: the `logging:` config section, applied with `models.logs`.

JSON lines (journald, log shippers) or text, rotated by size. Each record carries the scanner's
`device_id`, and the `receipt_id` being handled when code sets it with `receipt_context(...)`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal

from pydantic import Field

from edge_agent.configbase import ConfigPath, StrictModel
from models import logs


class LoggingConfig(StrictModel):
    """`logging:` of agent.yaml."""

    format: Literal["auto", "json", "text"] = Field(
        default="auto", description="JSON lines or text; auto: text on a terminal."
    )
    file: ConfigPath | None = Field(default=None, description="Also log (JSON) to this file.")
    max_bytes: int = Field(default=5 << 20, ge=1024, description="Rotate the file at this size.")
    backup_count: int = Field(default=3, ge=0, description="Rotated files kept.")


def receipt_context(rid: str) -> AbstractContextManager[None]:
    """Within the block, records carry `receipt_id`."""
    return logs.log_context(receipt_id=rid)


def configure_logging(
    config: LoggingConfig, device_id: str | None = None, *, tty: bool | None = None
) -> None:
    """Install the handlers `config` asks for; every record carries the scanner's device id."""
    logs.configure_logging(
        config.format,
        log_file=config.file,
        max_bytes=config.max_bytes,
        backup_count=config.backup_count,
        static={"device_id": device_id} if device_id else None,
        tty=tty,
    )
