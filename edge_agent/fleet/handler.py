"""The agent's `CommandHandler`: applies desired configurations and runs commands, one at a time.

Messages arrive on the MQTT link's thread; `FleetHandler` only queues them there, and one worker
thread ("fleet") handles them in arrival order, so a slow command never holds up PUBACKs.
Results and ``config/reported`` leave through `ControlPublisher.publish_control`; every result
is written to the command journal first and published again on each connect until the broker
acknowledged it (`on_connected`), so nothing the server should hear is lost to an outage, a
reboot or a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from edge_agent.fleet.commands import COMMANDS, DiagnosticsArgs, FeedbackTestArgs
from edge_agent.fleet.config import FleetConfig
from edge_agent.fleet.journal import CommandJournal
from edge_agent.fleet.shadow import ConfigShadow
from models.protocol import Command, CommandResult, ConfigDesired

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
    from edge_agent.ota.updater import Updater

log = logging.getLogger(__name__)

#: How long a result is given to reach the broker before a reboot or restart.
ACK_WAIT_S = 5.0


class ControlPublisher(Protocol):
    """Publishes QoS 1 control messages (the MQTT link)."""

    def publish_control(
        self,
        leaf: str,
        payload: bytes,
        *,
        retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> None: ...


class SettingNotApplied(RuntimeError):
    """A validated setting could not be put in force (e.g. the pipeline could not be rebuilt)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


class FleetHost(Protocol):
    """What the handler needs from the agent."""

    def apply_config(self, config: AgentConfig) -> None:
        """Put `config` in force; raises `SettingNotApplied` for a key it can't apply."""
        ...

    def rescan_last(self) -> dict[str, Any]:
        """Read the last kept image again; raises LookupError when there is none."""
        ...

    def diagnostics(self, log_lines: int) -> dict[str, Any]: ...

    def feedback_test(self, args: FeedbackTestArgs) -> dict[str, Any]:
        """Show LED patterns and beeps; raises LookupError when no GPIO is configured."""
        ...

    def purge_outbox(self) -> dict[str, Any]: ...

    def request_restart(self) -> None: ...


class FleetHandler:
    """Desired config and commands for one scanner; see the module docstring."""

    def __init__(
        self,
        config: FleetConfig,
        shadow: ConfigShadow,
        host: FleetHost,
        publisher: ControlPublisher,
        *,
        run: Callable[[list[str]], subprocess.CompletedProcess[bytes]] | None = None,
    ) -> None:
        self.config = config
        self.shadow = shadow
        self.host = host
        self.publisher = publisher
        self.updater: Updater | None = None
        self.journal = CommandJournal(
            config.state_dir / "commands.sqlite3", keep_s=config.journal_keep_days * 86400
        )
        self._run = run or _run_command
        self._queue: queue.Queue[ConfigDesired | Command | threading.Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ CommandHandler

    def on_config(self, desired: ConfigDesired) -> None:
        self._queue.put(desired)

    def on_command(self, command: Command) -> None:
        self._queue.put(command)

    def on_connected(self) -> None:
        """Publish the configuration in force and every result not yet acknowledged."""
        self.publisher.publish_control(
            "config/reported", self.shadow.report().to_json(), retain=True
        )
        pending = self.journal.undelivered()
        if pending:
            log.info("republishing %d command result(s) not yet acknowledged", len(pending))
        for entry in pending:
            assert entry.result is not None
            self._publish_result(entry.command_id, entry.result, entry.seq)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._close_interrupted()
        self._thread = threading.Thread(target=self._work, name="fleet", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self.journal.close()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is handled; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, threading.Event):
                    item.set()
                elif isinstance(item, ConfigDesired):
                    self._apply(item)
                else:
                    self._command(item)
            except Exception:
                log.exception("handling %r failed", item)

    def _close_interrupted(self) -> None:
        """Commands begun before a restart and never finished get their final result now."""
        for entry in self.journal.unfinished():
            if entry.name == "ota" and self.updater is not None and self._ota_on_trial(entry):
                continue
            status, detail = "failed", "interrupted by a restart of the agent; send it again"
            if entry.name == "reboot":
                status, detail = "succeeded", "the scanner rebooted"
            elif entry.name == "restart_agent":
                status, detail = "succeeded", "the agent restarted"
            self.report(
                CommandResult(
                    command_id=uuid.UUID(entry.command_id),
                    status=status,
                    detail=detail,
                ),
                entry.name,
            )

    def _ota_on_trial(self, entry: Any) -> bool:
        assert self.updater is not None
        return any(
            (store.read_state() or {}).get("command_id") == entry.command_id
            for store in self.updater.stores.values()
        )

    # ------------------------------------------------------------------ config

    def _apply(self, desired: ConfigDesired) -> None:
        proposal = self.shadow.propose(desired)
        if proposal is None:
            return
        for _ in range(len(proposal.overrides) + 1):
            try:
                self.host.apply_config(proposal.config)
                break
            except SettingNotApplied as exc:
                log.warning("setting %s not applied: %s", exc.key, exc.reason)
                proposal = proposal.refuse(exc.key, exc.reason, self.shadow.base)
        self.shadow.commit(proposal)
        log.info(
            "configuration version %d in force: %d setting(s) changed from the file, %d rejected%s",
            proposal.version,
            len(proposal.overrides),
            len(proposal.rejected),
            f" ({', '.join(sorted(proposal.rejected))})" if proposal.rejected else "",
        )
        self.publisher.publish_control(
            "config/reported", self.shadow.report().to_json(), retain=True
        )

    # ------------------------------------------------------------------ commands

    def report(self, result: CommandResult, name: str = "") -> threading.Event:
        """Journal `result` and publish it; the event is set on its PUBACK."""
        acked = threading.Event()
        seq = self.journal.record(result, name)
        if seq is None:  # the command has a final result already
            log.warning("late result for finished command %s dropped", result.command_id)
            acked.set()
            return acked
        log.info(
            "command %s: %s%s",
            result.command_id,
            result.status,
            f" ({result.detail})" * bool(result.detail),
        )
        self._publish_result(str(result.command_id), result.to_json(), seq, acked)
        return acked

    def _publish_result(
        self, command_id: str, payload: bytes, seq: int, acked: threading.Event | None = None
    ) -> None:
        def on_ack() -> None:
            self.journal.mark_delivered(command_id, seq)
            if acked is not None:
                acked.set()

        self.publisher.publish_control(f"cmd/{command_id}/result", payload, on_ack=on_ack)

    def _command(self, command: Command) -> None:
        cid = str(command.command_id)
        entry = self.journal.get(cid)
        if entry is not None:
            log.info("command %s (%s) delivered again: not run twice", cid, command.name)
            if entry.result is not None:
                self._publish_result(cid, entry.result, entry.seq)
            return
        self.journal.begin(command)

        def result(status: Any, detail: str = "", **output: Any) -> None:
            self.report(
                CommandResult(
                    command_id=command.command_id, status=status, detail=detail, output=output
                ),
                command.name,
            )

        if command.expires_at is not None and command.expires_at <= dt.datetime.now(dt.UTC):
            result("expired", f"expired at {command.expires_at.isoformat()}")
            return
        spec = COMMANDS.get(command.name)
        if spec is None:
            result("rejected", f"unknown command {command.name!r}; known: {', '.join(COMMANDS)}")
            return
        try:
            args = spec.args.model_validate(command.args)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "args"
            result("rejected", f"invalid args for {command.name}: {where}: {err['msg']}")
            return
        shown = repr(command.args)
        log.info("command %s: %s %s", cid, command.name, shown if len(shown) < 200 else "(...)")
        try:
            self._dispatch(command, args, result)
        except Exception as exc:
            log.exception("command %s (%s) failed", cid, command.name)
            result("failed", f"{type(exc).__name__}: {exc}")

    def _dispatch(self, command: Command, args: BaseModel, result: Callable[..., None]) -> None:
        name = command.name
        if name == "reboot":
            self._reboot(command)
        elif name == "restart_agent":
            acked = self.report(
                CommandResult(
                    command_id=command.command_id, status="succeeded", detail="restarting"
                ),
                name,
            )
            acked.wait(ACK_WAIT_S)
            self.host.request_restart()
        elif name == "rescan_last":
            try:
                result("succeeded", "read again as a new receipt", **self.host.rescan_last())
            except LookupError as exc:
                result("failed", str(exc))
        elif name == "upload_diagnostics":
            assert isinstance(args, DiagnosticsArgs)
            result("succeeded", "diagnostics", **self.host.diagnostics(args.log_lines))
        elif name == "test_feedback":
            assert isinstance(args, FeedbackTestArgs)
            try:
                result("succeeded", "feedback shown", **self.host.feedback_test(args))
            except LookupError as exc:
                result("failed", str(exc))
        elif name == "purge_outbox":
            result("succeeded", "outbox purged", **self.host.purge_outbox())
        elif name == "ota":
            if self.updater is None:
                result("rejected", "OTA is not configured on this scanner (no ota: section)")
                return
            final = self.updater.start(command)
            if final is not None:
                self.report(final, name)

    def _reboot(self, command: Command) -> None:
        acked = self.report(
            CommandResult(command_id=command.command_id, status="in_progress", detail="rebooting"),
            "reboot",
        )
        acked.wait(ACK_WAIT_S)
        argv = self.config.reboot_command
        log.warning("rebooting the scanner: %s", " ".join(argv))
        try:
            proc = self._run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            self.report(
                CommandResult(
                    command_id=command.command_id, status="failed", detail=f"{argv[0]}: {exc}"
                )
            )
            return
        if proc.returncode != 0:
            err = (proc.stderr or b"").decode(errors="replace").strip()[-300:]
            self.report(
                CommandResult(
                    command_id=command.command_id,
                    status="failed",
                    detail=f"{' '.join(argv)} exited {proc.returncode}: {err}",
                )
            )
            return
        self.report(
            CommandResult(
                command_id=command.command_id, status="succeeded", detail="reboot started"
            )
        )


def _run_command(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=60, check=False)  # noqa: S603


__all__ = ["ControlPublisher", "FleetHandler", "FleetHost", "SettingNotApplied"]
