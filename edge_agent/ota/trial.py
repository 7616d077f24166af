"""A release on trial: switched in, self-tested, on probation, then made final or rolled back.

The trial of one kind (``models`` or ``agent``) lives in its slot store's ``state.json``
(`SlotStore.write_state`): ``command_id``, ``release``, ``kind``, ``slot`` (the new one),
``fallback`` (the slot to go back to; None: the factory release), ``stage`` (``selftest``,
``restart``, ``probation``), counters (``scans_ok``, ``scans_failed``, ``boots``) and, once it
failed, ``outcome`` and ``reason``. It is written *before* each switch of ``current``, so after
a power cut `edge_agent.ota.boot` always knows which release is on trial and what to go back to.

- **models**: `switch_models` points ``current`` at the new slot, builds a reader from it and
  reads the release's sample receipts (`edge_agent.ota.selftest`); only a reader that passed is
  handed to the agent (`UpdateHost.activate_reader`), so the old one serves meanwhile.
- **agent**: `switch_agent` runs the self-test in a child process on the new code *before*
  switching, then asks the agent to restart (``firmware/launch.py`` starts the new code).
- **probation**: `on_scan` counts the agent's real reads; enough good ones `commit` the release,
  too many failures `rollback` (the agent reads the failed image again with the old reader).

Every step is reported through `report` as a ``CommandResult`` of the ``ota`` command:
``in_progress`` with ``output.stage`` (`progress`), then ``succeeded`` or ``failed`` (`final`).

Locking: `lock` (shared with the updater) guards the state files; the agent's read lock is taken
before it (the agent calls `on_scan` while reading), so the host is never called with it held.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from edge_agent.ota.config import OtaConfig
from edge_agent.ota.selftest import run_selftest
from edge_agent.ota.slots import SlotName, SlotStore
from edge_agent.reader import Reader
from models.protocol import CommandResult

log = logging.getLogger(__name__)

Kind = Literal["models", "agent"]
Report = Callable[[CommandResult], object]


class UpdateHost(Protocol):
    """What the updater needs from the agent."""

    def build_reader(self, models_dir: Path | None) -> Reader:
        """A reader for the models in `models_dir` (None: the factory models)."""
        ...

    def activate_reader(self, reader: Reader, models_dir: Path | None) -> Reader:
        """Scan with `reader` from now on; returns the reader it replaces."""
        ...

    def pipeline_json(self, models_dir: Path | None) -> str:
        """The pipeline config for `models_dir`, as JSON (for an agent self-test process)."""
        ...

    def request_restart(self) -> None:
        """Exit so that systemd starts the agent again."""
        ...


class Failed(Exception):
    """An update step failed: `reason` is the result's ``output.reason``, `output` goes with it."""

    def __init__(self, reason: str, detail: str, **output: Any) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.output = reason, detail, output


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Trial:
    """The trials of both kinds of release; see the module docstring."""

    def __init__(
        self,
        config: OtaConfig,
        host: UpdateHost,
        report: Report,
        stores: dict[Kind, SlotStore],
        lock: threading.RLock,
    ) -> None:
        self.config = config
        self.host = host
        self._report = report
        self.stores = stores
        self.lock = lock
        #: Set while the agent starts (`edge_agent.ota.boot`): no reader exists to swap yet.
        self.recovering = False
        self._previous_reader: Reader | None = None

    # ------------------------------------------------------------------ models

    def switch_models(self, state: dict[str, Any]) -> None:
        store = self.stores["models"]
        with self.lock:
            state["stage"] = "selftest"
            store.write_state(state)
            store.switch(state["slot"])
        self.progress(state, "selftest")
        self.selftest_and_activate(state, activate=True)

    def selftest_and_activate(self, state: dict[str, Any], *, activate: bool) -> None:
        """Self-test the models slot on trial; then probation (or final), or roll back."""
        store = self.stores["models"]
        slot_dir = store.slot_dir(state["slot"])
        manifest = store.read_manifest(state["slot"])
        reader: Reader | None = None
        try:
            reader = self.host.build_reader(slot_dir)
        except Exception as exc:
            report: dict[str, Any] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            report = run_selftest(reader, slot_dir, manifest)
        # Lock order: the agent's lock (held while it reads) before the updater's. The agent is
        # called here without holding ours; it counts no scan while the stage is "selftest".
        if not report["passed"]:
            self.rollback("models", state, "the self-test failed", "selftest", selftest=report)
            return
        log.info("models release %s passed its self-test (%s ms)", state["release"], report["ms"])
        state["selftest"] = {"passed": True, "ms": report["ms"], "cases": len(report["cases"])}
        if activate and reader is not None:
            self._previous_reader = self.host.activate_reader(reader, slot_dir)
        with self.lock:
            if self.config.probation_scans == 0:
                self.commit("models", state)
                return
            state["stage"] = "probation"
            store.write_state(state)
        self.progress(state, "probation", scans_needed=self.config.probation_scans)

    # ------------------------------------------------------------------ agent

    def switch_agent(self, state: dict[str, Any]) -> None:
        store = self.stores["agent"]
        slot_dir = store.slot_dir(state["slot"])
        self.progress(state, "selftest")
        report = self._agent_selftest(slot_dir)
        if not report.get("passed"):
            raise Failed(
                "selftest",
                "the new agent's self-test failed; nothing was switched",
                selftest=report,
            )
        with self.lock:
            state.update(stage="restart", max_boots=self.config.agent_max_boots)
            store.write_state(state)
            store.switch(state["slot"])
        self.progress(state, "restart")
        self.host.request_restart()

    def _agent_selftest(self, slot_dir: Path) -> dict[str, Any]:
        env = {**os.environ, "PYTHONPATH": str(slot_dir / "python")}
        models_dir = self.stores["models"].current_dir()
        try:
            proc = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-P", "-m", "edge_agent.ota.selftest", str(slot_dir)],
                input=self.host.pipeline_json(models_dir),
                capture_output=True,
                text=True,
                cwd=slot_dir,
                env=env,
                timeout=self.config.selftest_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"passed": False, "error": f"timed out after {self.config.selftest_timeout_s} s"}
        lines = proc.stdout.strip().splitlines()
        try:
            report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        except ValueError:
            report = {}
        if proc.returncode != 0 or not report:
            report.setdefault("error", proc.stderr.strip()[-500:] or f"exit {proc.returncode}")
            report["passed"] = False
        return report

    # ------------------------------------------------------------------ probation

    def on_scan(self, ok: bool) -> bool:
        """Count one real read of the release on probation; True if it was just rolled back."""
        with self.lock:
            for kind, store in self.stores.items():
                state = store.read_state()
                if state is None or state.get("stage") != "probation":
                    continue
                if ok:
                    state["scans_ok"] = int(state.get("scans_ok", 0)) + 1
                    state["boots"] = 0
                    if state["scans_ok"] >= self.config.probation_scans:
                        self.commit(kind, state)
                    else:
                        store.write_state(state)
                    return False
                state["scans_failed"] = int(state.get("scans_failed", 0)) + 1
                if state["scans_failed"] >= self.config.probation_failures:
                    self.rollback(
                        kind,
                        state,
                        f"{state['scans_failed']} real scan(s) failed on probation",
                        "probation",
                    )
                    return True
                store.write_state(state)
            return False

    # ------------------------------------------------------------------ the end of a trial

    def commit(self, kind: Kind, state: dict[str, Any]) -> None:
        self.final(
            state,
            "succeeded",
            f"{kind} release {state['release']} installed in slot {state['slot']}",
            scans_ok=state.get("scans_ok", 0),
            selftest=state.get("selftest"),
        )
        self.stores[kind].clear_state()
        self._previous_reader = None
        log.info("%s release %s is final", kind, state["release"])

    def rollback(  # called with the updater's lock only from the agent's scanning thread
        self,
        kind: Kind,
        state: dict[str, Any],
        why: str,
        reason: str,
        *,
        restart: bool = True,
        **output: Any,
    ) -> None:
        store = self.stores[kind]
        fallback: SlotName | None = state.get("fallback")
        detail = (
            f"rolled back to {f'slot {fallback}' if fallback else 'the factory release'}: {why}"
        )
        log.error("%s release %s: %s", kind, state.get("release"), detail)
        state.update(outcome=detail, reason=reason)
        store.write_state(state)
        store.switch(fallback)
        if kind == "models" and not self.recovering:
            fallback_dir = store.current_dir()
            previous, self._previous_reader = self._previous_reader, None
            try:
                reader = previous or self.host.build_reader(fallback_dir)
                self.host.activate_reader(reader, fallback_dir)
            except Exception:
                log.exception(
                    "rebuilding the reader of the %s models failed", fallback or "factory"
                )
        self.final(state, "failed", detail, reason=reason, rolled_back=True, **output)
        store.clear_state()
        if kind == "agent" and restart:
            self.host.request_restart()

    # ------------------------------------------------------------------ reporting

    def progress(self, state: dict[str, Any], stage: str, **extra: Any) -> None:
        self._report(
            CommandResult(
                command_id=uuid.UUID(state["command_id"]),
                status="in_progress",
                detail=stage,
                output={"stage": stage, "release": state["release"], "kind": state["kind"]} | extra,
            )
        )

    def final(
        self,
        state: dict[str, Any],
        status: Literal["succeeded", "failed"],
        detail: str,
        **output: Any,
    ) -> None:
        self._report(
            CommandResult(
                command_id=uuid.UUID(state["command_id"]),
                status=status,
                detail=detail,
                output={"release": state.get("release"), "kind": state.get("kind")}
                | {k: v for k, v in output.items() if v is not None},
            )
        )
