"""Installing a release on the device, trying it, and rolling it back on its own.

The ``ota`` command (args: `provisioning.release.OtaArgs`) goes through these steps; each one is
reported as a command result with status ``in_progress`` and ``output.stage``, the outcome as
``succeeded`` or ``failed`` (``output.reason``: ``bad_signature``, ``bad_manifest``, ``busy``,
``disk``, ``download``, ``install``, ``selftest``, ``probation``, ``boot``, ``damaged``,
``interrupted``; ``output.rolled_back`` when a switch was undone):

1. **verify** the Ed25519 signature over the manifest's bytes (before downloading anything);
2. **download** the artifact (`edge_agent.ota.download`): size and sha256 as pinned;
3. **install** it into the inactive slot (`edge_agent.ota.slots`): staged, every file checked,
   renamed into place, checked again;
4. **switch** ``current`` to it, after writing the trial state (``state.json``: slot, fallback,
   stage) so a restart knows a release is on trial;
5. **selftest**: the pipeline built from the new slot reads the release's sample receipts
   (`edge_agent.ota.selftest`); a failure switches back;
6. **probation**: the agent reads with the new release; after ``ota.probation_scans`` real
   scans it is final (``succeeded``); ``ota.probation_failures`` failed reads switch back and the
   failed image is read again with the old release. The agent keeps scanning throughout: the
   old reader serves until the new one has passed its self-test.

Agent releases (``kind: agent``, code in ``python/``) run their self-test in a child process on
the new code *before* switching, then the agent exits for systemd to restart it through
``firmware/launch.py``, which puts the new code first on the path and switches back by itself
if the new agent does not start ``ota.agent_max_boots`` times. Probation then works as above.

A power cut at any step leaves ``current`` naming a complete, verified slot (or the factory
release): `recover()`, called once at start before the reader is built, finishes or undoes what
was interrupted, using ``state.json``. A release on trial that keeps crashing the agent is
rolled back after ``ota.agent_max_boots`` starts that read nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from pydantic import ValidationError

from edge_agent.ota.config import OtaConfig
from edge_agent.ota.download import DownloadError, download
from edge_agent.ota.selftest import run_selftest
from edge_agent.ota.slots import SlotError, SlotName, SlotStore
from edge_agent.reader import Reader
from models.protocol import Command, CommandResult
from provisioning.release import OtaArgs, ReleaseManifest
from provisioning.signing import SignatureError, load_public_keys, verify_manifest

log = logging.getLogger(__name__)

Kind = Literal["models", "agent"]
#: Set by firmware/launch.py to the agent release whose code it put on the path.
RELEASE_ENV = "RM_AGENT_RELEASE"
#: The agent counts as healthy (its boot counter is reset) after running this long.
HEALTHY_AFTER_S = 300.0
#: Free space an install must leave on the data partition (the outbox lives there too).
FREE_MARGIN = 128 << 20


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


Report = Callable[[CommandResult], object]


class _Failed(Exception):
    def __init__(self, reason: str, detail: str, **output: Any) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.output = reason, detail, output


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Updater:
    """Over-the-air updates on one scanner; see the module docstring."""

    def __init__(
        self,
        config: OtaConfig,
        host: UpdateHost,
        report: Report,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self._report = report
        self._transport = transport
        self.keys = load_public_keys(config.public_keys)
        self.stores: dict[Kind, SlotStore] = {
            "models": SlotStore(config.dir / "models"),
            "agent": SlotStore(config.dir / "agent"),
        }
        self._lock = threading.RLock()
        self._busy: str | None = None
        self._thread: threading.Thread | None = None
        self._previous_reader: Reader | None = None
        self._started = time.monotonic()
        self._healthy = False
        self._recovering = False

    # ------------------------------------------------------------------ status

    def releases(self) -> dict[str, str]:
        """Release in force per kind (for the status message and diagnostics)."""
        out: dict[str, str] = {}
        for kind, store in self.stores.items():
            name = store.current()
            if name is not None:
                try:
                    out[f"release.{kind}"] = store.read_manifest(name).release
                except (OSError, ValueError):
                    out[f"release.{kind}"] = f"slot-{name}"
        return out

    def status(self) -> dict[str, Any]:
        return {
            kind: {"current": store.current(), "trial": store.read_state()}
            for kind, store in self.stores.items()
        } | {"installing": self._busy}

    # ------------------------------------------------------------------ start-up

    def recover(self) -> Path | None:
        """Settle what a restart interrupted; returns the models folder the agent reads with."""
        with self._lock:
            self._recovering = True
            try:
                self._recover_agent()
                return self._recover_models()
            finally:
                self._recovering = False

    def _settle_interrupted(self, kind: Kind) -> dict[str, Any] | None:
        """Close a trial whose slot is not current (never switched in, or switched back)."""
        store = self.stores[kind]
        state = store.read_state()
        if state is None:
            return None
        if state.get("slot") == store.current():
            return state
        self._final(
            state,
            "failed",
            state.get("outcome") or "interrupted before the release was switched in",
            reason=state.get("reason") or "interrupted",
            rolled_back="outcome" in state,
        )
        store.clear_state()
        return None

    def _check_current(self, kind: Kind, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """Verify the current slot; a damaged one is left for the other slot or the factory."""
        store = self.stores[kind]
        current = store.current()
        if current is None:
            return state
        try:
            store.verify(current, self.keys)
            return state
        except SlotError as exc:
            log.error("%s release in slot %s is damaged: %s", kind, current, exc)
            if state is not None:
                self._rollback(kind, state, f"the new release is damaged: {exc}", "damaged")
                return None
        other: SlotName = "b" if current == "a" else "a"
        try:
            store.verify(other, self.keys)
            store.switch(other)
        except SlotError:
            store.switch(None)
        if kind == "agent":  # the code running now came from the damaged slot
            self.host.request_restart()
        return None

    def _count_boot(self, kind: Kind, state: dict[str, Any] | None) -> dict[str, Any] | None:
        if state is None:
            return None
        state["boots"] = int(state.get("boots", 0)) + 1
        if state["boots"] > self.config.agent_max_boots:
            self._rollback(
                kind,
                state,
                f"the agent restarted {state['boots'] - 1} times on it without reading a receipt",
                "boot",
            )
            return None
        self.stores[kind].write_state(state)
        return state

    def _recover_models(self) -> Path | None:
        store = self.stores["models"]
        state = self._settle_interrupted("models")
        state = self._check_current("models", state)
        if state is not None and state.get("stage") == "selftest":
            log.info("models release %s: self-test interrupted, running it again", state["release"])
            self._selftest_and_activate(state, activate=False)
            state = store.read_state()
        elif state is not None:
            state = self._count_boot("models", state)
        if state is not None:
            log.info(
                "models release %s on probation: %d of %d scans read",
                state["release"],
                state.get("scans_ok", 0),
                self.config.probation_scans,
            )
        return store.current_dir()

    def _recover_agent(self) -> None:
        store = self.stores["agent"]
        state = self._settle_interrupted("agent")
        state = self._check_current("agent", state)
        if state is None:
            return
        running = os.environ.get(RELEASE_ENV)
        if running != state["release"]:
            self._rollback(
                "agent",
                state,
                f"the agent runs {running or 'its installed code'}, not {state['release']}: "
                "start it through firmware/launch.py",
                "boot",
                restart=False,
            )
            return
        if state.get("stage") == "restart":
            state["stage"] = "probation"
            store.write_state(state)
            self._progress(state, "probation", scans_needed=self.config.probation_scans)

    def mark_healthy(self) -> None:
        """Call from the main loop: after `HEALTHY_AFTER_S` of running, boots stop counting."""
        if self._healthy or time.monotonic() - self._started < HEALTHY_AFTER_S:
            return
        self._healthy = True
        with self._lock:
            for store in self.stores.values():
                state = store.read_state()
                if state is not None and state.get("boots"):
                    state["boots"] = 0
                    store.write_state(state)

    # ------------------------------------------------------------------ the command

    def start(self, command: Command) -> CommandResult | None:
        """Begin the ``ota`` command; returns its final result now if it ends at once."""
        cid = command.command_id

        def fail(status: Literal["failed", "rejected"], detail: str, **out: Any) -> CommandResult:
            return CommandResult(command_id=cid, status=status, detail=detail, output=out)

        try:
            args = OtaArgs.model_validate(command.args)
        except ValidationError as exc:
            return fail("rejected", f"invalid ota args: {_first_error(exc)}")
        manifest_bytes = args.manifest.encode()
        try:
            key = verify_manifest(self.keys, manifest_bytes, args.signature)
        except SignatureError as exc:
            log.error("ota %s refused: %s", cid, exc)
            return fail("failed", f"signature refused: {exc}", reason="bad_signature")
        try:
            manifest = ReleaseManifest.model_validate_json(manifest_bytes)
        except ValidationError as exc:
            return fail("failed", f"manifest invalid: {_first_error(exc)}", reason="bad_manifest")
        store = self.stores[manifest.kind]
        with self._lock:
            trials = [s.read_state() or {} for s in self.stores.values() if s.read_state()]
            if self._busy is not None or trials:
                busy = self._busy or trials[0].get("command_id")
                return fail(
                    "failed", f"another update is in progress (command {busy})", reason="busy"
                )
            current = store.current()
            try:
                in_force = None if current is None else store.read_manifest(current).release
            except (OSError, ValueError):
                in_force = None
            if in_force == manifest.release:
                return CommandResult(
                    command_id=cid,
                    status="succeeded",
                    detail=f"release {manifest.release} is already in force",
                    output={"release": manifest.release, "kind": manifest.kind},
                )
            self._busy = str(cid)
            log.info(
                "ota %s: installing %s release %s (signed by key %s)",
                cid,
                manifest.kind,
                manifest.release,
                key,
            )
            self._thread = threading.Thread(
                target=self._install,
                args=(str(cid), args, manifest, manifest_bytes),
                name="ota-install",
                daemon=True,
            )
            self._thread.start()
        return None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for an install thread (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _install(
        self, cid: str, args: OtaArgs, manifest: ReleaseManifest, manifest_bytes: bytes
    ) -> None:
        state: dict[str, Any] = {
            "command_id": cid,
            "release": manifest.release,
            "kind": manifest.kind,
            "stage": "installing",
            "started_at": _now(),
        }
        store = self.stores[manifest.kind]
        try:
            self._progress(state, "download", size=manifest.artifact.size)
            artifact = store.downloads / f"{manifest.artifact.sha256}.tar.gz"
            store.clean_downloads(keep=artifact)
            self._check_space(store, manifest)
            if not artifact.exists():
                try:
                    download(
                        args.url,
                        artifact,
                        size=manifest.artifact.size,
                        sha256=manifest.artifact.sha256,
                        config=self.config,
                        progress=lambda got, size: self._progress(
                            state, "download", received=got, size=size
                        ),
                        transport=self._transport,
                    )
                except (DownloadError, OSError) as exc:
                    raise _Failed("download", str(exc)) from exc
            self._progress(state, "install")
            slot = store.inactive()
            try:
                store.unpack(
                    artifact, store.staging(slot), manifest, manifest_bytes, args.signature
                )
                store.install_staged(slot)
                store.verify(slot, self.keys)
            except (SlotError, OSError) as exc:
                raise _Failed("install", str(exc)) from exc
            store.clean_downloads()
            state.update(slot=slot, fallback=store.current(), scans_ok=0, scans_failed=0, boots=0)
            if manifest.kind == "models":
                self._switch_models(state)
            else:
                self._switch_agent(state, manifest)
        except _Failed as exc:
            log.error("ota %s failed at %s: %s", cid, exc.reason, exc.detail)
            self._final(state, "failed", exc.detail, reason=exc.reason, **exc.output)
        except Exception as exc:
            log.exception("ota %s failed", cid)
            why = f"{type(exc).__name__}: {exc}"
            if state.get("slot") is not None and store.current() == state["slot"]:
                self._rollback(manifest.kind, state, why, "install")
            else:
                self._final(state, "failed", why, reason="install")
        finally:
            with self._lock:
                self._busy = None

    def _check_space(self, store: SlotStore, manifest: ReleaseManifest) -> None:
        """Refuse a release that would leave the data partition (and so the outbox) short."""
        needed = manifest.artifact.size + sum(f.size for f in manifest.files) + FREE_MARGIN
        free = shutil.disk_usage(store.root).free
        if free < needed:
            raise _Failed(
                "disk",
                f"{free} bytes free, the release needs {needed} (artifact, unpacked files and "
                f"{FREE_MARGIN} to spare for the outbox)",
            )

    # ------------------------------------------------------------------ models

    def _switch_models(self, state: dict[str, Any]) -> None:
        store = self.stores["models"]
        with self._lock:
            state["stage"] = "selftest"
            store.write_state(state)
            store.switch(state["slot"])
        self._progress(state, "selftest")
        self._selftest_and_activate(state, activate=True)

    def _selftest_and_activate(self, state: dict[str, Any], *, activate: bool) -> None:
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
            self._rollback("models", state, "the self-test failed", "selftest", selftest=report)
            return
        log.info("models release %s passed its self-test (%s ms)", state["release"], report["ms"])
        state["selftest"] = {"passed": True, "ms": report["ms"], "cases": len(report["cases"])}
        if activate and reader is not None:
            self._previous_reader = self.host.activate_reader(reader, slot_dir)
        with self._lock:
            if self.config.probation_scans == 0:
                self._commit("models", state)
                return
            state["stage"] = "probation"
            store.write_state(state)
        self._progress(state, "probation", scans_needed=self.config.probation_scans)

    # ------------------------------------------------------------------ agent

    def _switch_agent(self, state: dict[str, Any], manifest: ReleaseManifest) -> None:
        store = self.stores["agent"]
        slot_dir = store.slot_dir(state["slot"])
        self._progress(state, "selftest")
        report = self._agent_selftest(slot_dir)
        if not report.get("passed"):
            raise _Failed(
                "selftest",
                "the new agent's self-test failed; nothing was switched",
                selftest=report,
            )
        with self._lock:
            state.update(stage="restart", max_boots=self.config.agent_max_boots)
            store.write_state(state)
            store.switch(state["slot"])
        self._progress(state, "restart")
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
        with self._lock:
            for kind, store in self.stores.items():
                state = store.read_state()
                if state is None or state.get("stage") != "probation":
                    continue
                if ok:
                    state["scans_ok"] = int(state.get("scans_ok", 0)) + 1
                    state["boots"] = 0
                    if state["scans_ok"] >= self.config.probation_scans:
                        self._commit(kind, state)
                    else:
                        store.write_state(state)
                    return False
                state["scans_failed"] = int(state.get("scans_failed", 0)) + 1
                if state["scans_failed"] >= self.config.probation_failures:
                    self._rollback(
                        kind,
                        state,
                        f"{state['scans_failed']} real scan(s) failed on probation",
                        "probation",
                    )
                    return True
                store.write_state(state)
            return False

    def _commit(self, kind: Kind, state: dict[str, Any]) -> None:
        self._final(
            state,
            "succeeded",
            f"{kind} release {state['release']} installed in slot {state['slot']}",
            scans_ok=state.get("scans_ok", 0),
            selftest=state.get("selftest"),
        )
        self.stores[kind].clear_state()
        self._previous_reader = None
        log.info("%s release %s is final", kind, state["release"])

    def _rollback(  # called with the updater's lock only from the agent's scanning thread
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
        if kind == "models" and not self._recovering:
            fallback_dir = store.current_dir()
            previous, self._previous_reader = self._previous_reader, None
            try:
                reader = previous or self.host.build_reader(fallback_dir)
                self.host.activate_reader(reader, fallback_dir)
            except Exception:
                log.exception(
                    "rebuilding the reader of the %s models failed", fallback or "factory"
                )
        self._final(state, "failed", detail, reason=reason, rolled_back=True, **output)
        store.clear_state()
        if kind == "agent" and restart:
            self.host.request_restart()

    # ------------------------------------------------------------------ reporting

    def _progress(self, state: dict[str, Any], stage: str, **extra: Any) -> None:
        self._report(
            CommandResult(
                command_id=uuid.UUID(state["command_id"]),
                status="in_progress",
                detail=stage,
                output={"stage": stage, "release": state["release"], "kind": state["kind"]} | extra,
            )
        )

    def _final(
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


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}"
