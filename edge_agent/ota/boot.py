"""What the agent's start does with an update a restart interrupted, and the boot count.

`BootRecovery.recover()` runs once, before the agent builds its reader, for each kind (agent
first: its code is already running). Using the trial in ``state.json`` (`edge_agent.ota.trial`):

1. **settle** a trial whose slot is not ``current`` (never switched in, or switched back before
   the result was sent): report it failed (``interrupted``, or the outcome it had) and clear it;
2. **verify** the current slot against its signed manifest; a damaged release on trial is
   rolled back (``damaged``), a damaged settled one is replaced by the other slot if that one
   verifies, else by the factory release (and the agent restarts if its own code was damaged);
3. **resume** the trial: a models self-test that was cut short runs again; a trial past it
   counts this start (``boots``) and is rolled back (``boot``) after ``ota.agent_max_boots``
   starts that read nothing; an agent release expects to be started by ``firmware/launch.py``
   (``RM_AGENT_RELEASE`` names it) and enters probation on its first start.

`mark_healthy()`, called from the scanning thread, resets the boot counts once the agent has
run for `HEALTHY_AFTER_S`: a release that crashes later is not one that cannot start.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.ota.slots import SlotError, SlotName
from edge_agent.ota.trial import Kind, Trial

log = logging.getLogger(__name__)

#: Set by firmware/launch.py to the agent release whose code it put on the path.
RELEASE_ENV = "RM_AGENT_RELEASE"
#: The agent counts as healthy (its boot counter is reset) after running this long.
HEALTHY_AFTER_S = 300.0


class BootRecovery:
    """Settles interrupted updates at start and counts boots; see the module docstring."""

    def __init__(self, trial: Trial, keys: Iterable[Ed25519PublicKey]) -> None:
        self.trial = trial
        self.stores = trial.stores
        self.config = trial.config
        self.keys = list(keys)
        self._started = time.monotonic()
        self._healthy = False

    def recover(self) -> Path | None:
        """Settle what a restart interrupted; returns the models folder the agent reads with."""
        with self.trial.lock:
            self.trial.recovering = True
            try:
                self._recover_agent()
                return self._recover_models()
            finally:
                self.trial.recovering = False

    def mark_healthy(self) -> None:
        """Call from the main loop: after `HEALTHY_AFTER_S` of running, boots stop counting."""
        if self._healthy or time.monotonic() - self._started < HEALTHY_AFTER_S:
            return
        self._healthy = True
        with self.trial.lock:
            for store in self.stores.values():
                state = store.read_state()
                if state is not None and state.get("boots"):
                    state["boots"] = 0
                    store.write_state(state)

    def _settle_interrupted(self, kind: Kind) -> dict[str, Any] | None:
        """Close a trial whose slot is not current (never switched in, or switched back)."""
        store = self.stores[kind]
        state = store.read_state()
        if state is None:
            return None
        if state.get("slot") == store.current():
            return state
        self.trial.final(
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
                self.trial.rollback(kind, state, f"the new release is damaged: {exc}", "damaged")
                return None
        other: SlotName = "b" if current == "a" else "a"
        try:
            store.verify(other, self.keys)
            store.switch(other)
        except SlotError:
            store.switch(None)
        if kind == "agent":  # the code running now came from the damaged slot
            self.trial.host.request_restart()
        return None

    def _count_boot(self, kind: Kind, state: dict[str, Any] | None) -> dict[str, Any] | None:
        if state is None:
            return None
        state["boots"] = int(state.get("boots", 0)) + 1
        if state["boots"] > self.config.agent_max_boots:
            self.trial.rollback(
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
            self.trial.selftest_and_activate(state, activate=False)
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
            self.trial.rollback(
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
            self.trial.progress(state, "probation", scans_needed=self.config.probation_scans)
