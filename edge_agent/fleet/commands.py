"""The commands a scanner understands: their names, their args, and what each one does.

- ``reboot``: runs ``fleet.reboot_command``; ``in_progress`` "rebooting", then ``succeeded``.
- ``restart_agent``: ``succeeded``, then the agent exits with status 75; systemd restarts it.
- ``rescan_last``: reads the last image kept in memory again, as a new receipt; ``output``:
  ``receipt_id``, ``source``.
- ``upload_diagnostics`` (``log_lines``: 0-2000): ``output`` is a snapshot of versions, config,
  outbox, OTA, link and the recent log lines, at most 48 KiB.
- ``test_feedback`` (``states``, ``beeps``, ``step_s``): shows LED patterns, sounds the buzzer.
- ``purge_outbox``: drops stored images of delivered receipts, compacts the outbox file.
- ``ota`` (`provisioning.release.OtaArgs`): see `edge_agent.ota.updater`.

Args are validated strictly (unknown keys refused): a command with bad args, or a name not in
this table, gets a ``rejected`` result saying why; one past its ``expires_at`` gets
``expired``. Finished commands are remembered (`edge_agent.fleet.journal`): a duplicate gets the
same result again and is not acted on twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from firmware.gpio import LedState


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiagnosticsArgs(NoArgs):
    log_lines: int = Field(default=200, ge=0, le=2000, description="Recent log lines to include.")


BeepName = Literal["ok", "rescan", "error"]
_ALL_BEEPS: list[BeepName] = ["ok", "rescan", "error"]


class FeedbackTestArgs(NoArgs):
    states: list[LedState] = Field(
        default_factory=lambda: [
            LedState.READY,
            LedState.READING,
            LedState.OFFLINE,
            LedState.ERROR,
        ],
        max_length=10,
        description="LED patterns to show in turn.",
    )
    beeps: list[BeepName] = Field(
        default_factory=lambda: list(_ALL_BEEPS),
        max_length=10,
        description="Buzzer signals to sound in turn.",
    )
    step_s: float = Field(default=1.0, ge=0.1, le=5.0, description="Seconds per pattern/signal.")


class OtaArgsPassthrough(BaseModel):
    """Validated by the updater itself (`provisioning.release.OtaArgs`)."""

    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    args: type[BaseModel]
    description: str


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("reboot", NoArgs, "Reboot the scanner (fleet.reboot_command)."),
        CommandSpec("restart_agent", NoArgs, "Restart the agent (exit 75, systemd restarts it)."),
        CommandSpec("rescan_last", NoArgs, "Read the last image again, as a new receipt."),
        CommandSpec("upload_diagnostics", DiagnosticsArgs, "Versions, config, queues and log."),
        CommandSpec("test_feedback", FeedbackTestArgs, "Show LED patterns and sound the buzzer."),
        CommandSpec(
            "purge_outbox",
            NoArgs,
            "Drop stored images of receipts already delivered, and compact the outbox file.",
        ),
        CommandSpec("ota", OtaArgsPassthrough, "Install a signed release (models or agent)."),
    )
}
