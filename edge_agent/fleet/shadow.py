"""The device's half of the configuration shadow: which desired version is in force, persisted.

State file (``<fleet.state_dir>/config.json``, written atomically)::

    {"version": 7, "settings": {"upload_images": false}, "rejected": {"x": "why"},
     "applied_at": "2024-06-01T10:00:00+00:00"}

`settings` holds the overrides only; the effective config is the YAML file's config with them
applied (`edge_agent.fleet.settings.apply`). On start the overrides are validated again, so a
value that a newer agent no longer accepts is dropped with a log line instead of stopping the
scanner.

Versions: a desired version older than or equal to the one in force is ignored (the retained
``config/desired`` arrives again on every connect; replaying it changes nothing). The server
must raise the version for every change.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.fleet import settings as runtime
from edge_agent.fsutil import atomic_write_json, read_json
from models.protocol import ConfigDesired, ConfigReported

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proposal:
    """A desired version worked out against the config in force, not yet applied."""

    version: int
    overrides: dict[str, Any]
    rejected: dict[str, str]
    config: AgentConfig
    previous: dict[str, Any] = field(repr=False, default_factory=dict)

    def refuse(self, key: str, reason: str, base: AgentConfig) -> Proposal:
        """The same proposal with `key` rejected (it keeps the value in force before)."""
        overrides = {k: v for k, v in self.overrides.items() if k != key}
        if key in self.previous:
            overrides[key] = self.previous[key]
        rejected = {**self.rejected, key: reason}
        return replace(
            self, overrides=overrides, rejected=rejected, config=runtime.apply(base, overrides)
        )


class ConfigShadow:
    """Desired -> applied configuration of one scanner; see the module docstring."""

    def __init__(self, base: AgentConfig, path: Path) -> None:
        self.base = base
        self.path = path
        self.version = 0
        self.overrides: dict[str, Any] = {}
        self.rejected: dict[str, str] = {}
        self._load()

    @property
    def config(self) -> AgentConfig:
        """The effective config: the file's, with the overrides in force."""
        return runtime.apply(self.base, self.overrides)

    def _load(self) -> None:
        try:
            state = read_json(self.path)
        except (OSError, ValueError) as exc:
            log.error(
                "applied config %s unreadable (%s): using the config file only", self.path, exc
            )
            return
        if not isinstance(state, dict):
            return
        for key, value in dict(state.get("settings") or {}).items():
            try:
                self.overrides[key] = runtime.validate_value(self.base, key, value)
            except ValueError as exc:
                log.warning("applied setting %s dropped on start: %s", key, exc)
        self.version = int(state.get("version") or 0)
        self.rejected = {str(k): str(v) for k, v in dict(state.get("rejected") or {}).items()}
        log.info(
            "configuration version %d in force (%d setting(s) changed from the file)",
            self.version,
            len(self.overrides),
        )

    def propose(self, desired: ConfigDesired) -> Proposal | None:
        """The proposal for `desired`; None when its version is not newer than the one in force."""
        if desired.version <= self.version:
            log.debug(
                "desired config version %d ignored: version %d is in force",
                desired.version,
                self.version,
            )
            return None
        overrides, rejected = runtime.resolve(self.base, self.overrides, desired.settings)
        return Proposal(
            version=desired.version,
            overrides=overrides,
            rejected=rejected,
            config=runtime.apply(self.base, overrides),
            previous=dict(self.overrides),
        )

    def commit(self, proposal: Proposal) -> None:
        """Persist `proposal` as the configuration in force (call once it is applied)."""
        atomic_write_json(
            self.path,
            {
                "version": proposal.version,
                "settings": runtime.dump_overrides(proposal.overrides),
                "rejected": proposal.rejected,
                "applied_at": dt.datetime.now(dt.UTC).isoformat(),
            },
        )
        self.version, self.overrides, self.rejected = (
            proposal.version,
            dict(proposal.overrides),
            dict(proposal.rejected),
        )

    def report(self) -> ConfigReported:
        return ConfigReported(
            version=self.version,
            settings=runtime.reported(self.config),
            rejected=self.rejected,
        )
