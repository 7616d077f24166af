"""The `fleet:` section of the agent's config: where fleet state is kept, how to reboot."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_agent.configbase import ConfigPath, StrictModel

#: Exit status of `receipts agent` when a ``restart_agent`` command asked for a restart; the
#: unit restarts the agent on it (``Restart=always``, ``RestartForceExitStatus=75``).
RESTART_EXIT_CODE = 75


class FleetConfig(StrictModel):
    """Fleet management on the device: applied configuration, command journal, reboots."""

    state_dir: ConfigPath = Field(
        default=Path("state"),
        validate_default=True,
        description="Folder of the applied configuration (config.json) and the command journal.",
    )
    reboot_command: list[str] = Field(
        default_factory=lambda: ["systemctl", "reboot"],
        min_length=1,
        description="Command run by the 'reboot' command (argv, no shell).",
    )
    diagnostics_log_lines: int = Field(
        default=200, ge=0, le=2000, description="Recent log lines kept in memory for diagnostics."
    )
    journal_keep_days: float = Field(
        default=30, gt=0, description="How long finished commands are remembered (duplicates)."
    )
