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

This module is the state machine that drives the steps; each piece lives in its own module:
`edge_agent.ota.install` (room, download, unpack and verify into the inactive slot),
`edge_agent.ota.trial` (switch, self-test, probation, commit or rollback, and the reports),
`edge_agent.ota.boot` (what a start does with an interrupted update; the boot count).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from edge_agent.ota.boot import HEALTHY_AFTER_S, RELEASE_ENV, BootRecovery
from edge_agent.ota.config import OtaConfig
from edge_agent.ota.install import FREE_MARGIN, install_release
from edge_agent.ota.slots import SlotStore
from edge_agent.ota.trial import Failed, Kind, Report, Trial, UpdateHost, now_iso
from models.protocol import Command, CommandResult
from provisioning.release import OtaArgs, ReleaseManifest
from provisioning.signing import SignatureError, load_public_keys, verify_manifest

log = logging.getLogger(__name__)

__all__ = [
    "FREE_MARGIN",
    "HEALTHY_AFTER_S",
    "RELEASE_ENV",
    "Kind",
    "Report",
    "UpdateHost",
    "Updater",
]


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
        self._transport = transport
        self.keys = load_public_keys(config.public_keys)
        self.stores: dict[Kind, SlotStore] = {
            "models": SlotStore(config.dir / "models"),
            "agent": SlotStore(config.dir / "agent"),
        }
        self._lock = threading.RLock()
        self._busy: str | None = None
        self._thread: threading.Thread | None = None
        self.trial = Trial(config, host, report, self.stores, self._lock)
        self.boot = BootRecovery(self.trial, self.keys)

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

    # ------------------------------------------------------------------ the agent's hooks

    def recover(self) -> Path | None:
        """Settle what a restart interrupted; returns the models folder the agent reads with."""
        return self.boot.recover()

    def mark_healthy(self) -> None:
        """Call from the main loop: after `HEALTHY_AFTER_S` of running, boots stop counting."""
        self.boot.mark_healthy()

    def on_scan(self, ok: bool) -> bool:
        """Count one real read of the release on probation; True if it was just rolled back."""
        return self.trial.on_scan(ok)

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
            "started_at": now_iso(),
        }
        store = self.stores[manifest.kind]
        trial = self.trial
        try:
            trial.progress(state, "download", size=manifest.artifact.size)
            slot = install_release(
                store,
                args,
                manifest,
                manifest_bytes,
                config=self.config,
                keys=self.keys,
                progress=lambda stage, extra: trial.progress(state, stage, **extra),
                transport=self._transport,
            )
            state.update(slot=slot, fallback=store.current(), scans_ok=0, scans_failed=0, boots=0)
            if manifest.kind == "models":
                trial.switch_models(state)
            else:
                trial.switch_agent(state)
        except Failed as exc:
            log.error("ota %s failed at %s: %s", cid, exc.reason, exc.detail)
            trial.final(state, "failed", exc.detail, reason=exc.reason, **exc.output)
        except Exception as exc:
            log.exception("ota %s failed", cid)
            why = f"{type(exc).__name__}: {exc}"
            if state.get("slot") is not None and store.current() == state["slot"]:
                trial.rollback(manifest.kind, state, why, "install")
            else:
                trial.final(state, "failed", why, reason="install")
        finally:
            with self._lock:
                self._busy = None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}"
