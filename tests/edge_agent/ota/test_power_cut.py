"""A power cut at any step of an update leaves a working scanner.

A child process installs a release and is killed (SIGKILL) just before its N-th filesystem
step (fsync, rename, symlink, unlink, rmtree), for N = 1, 2, ... until an install runs to the
end. After each kill the pointer must name a complete slot that verifies against its signed
manifest; then a fresh updater recovers (as the agent does on start) and the scanner must end
on the old release or the new one, never the broken one, with nothing left half-done.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from edge_agent.ota.slots import SlotStore
from edge_agent.ota.updater import Updater
from models.protocol import CommandResult
from provisioning.release import ReleaseManifest
from provisioning.signing import generate_signing_key
from tests.edge_agent.ota.helpers import FakeHost, make_release, ota_command, ota_config, serve

STEPS = (("os", "fsync"), ("os", "replace"), ("os", "rename"), ("os", "symlink"), ("os", "unlink"))
MAX_STEPS = 200


def _arm(n: int) -> None:
    """Kill this process just before its n-th filesystem step from now on."""
    count = 0

    def hit() -> None:
        nonlocal count
        count += 1
        if count == n:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(module, name: str) -> None:
        original = getattr(module, name)

        def step(*args, **kwargs):
            hit()
            return original(*args, **kwargs)

        setattr(module, name, step)

    for _, name in STEPS:
        wrap(os, name)
    wrap(shutil, "rmtree")


def _child(root: Path, key, release, n: int) -> int:
    updater = Updater(
        ota_config(root, key, probation_scans=1),
        FakeHost(),
        lambda r: None,
        transport=serve([release]),
    )
    updater.recover()
    _arm(n)
    updater.start(ota_command(release))
    updater.wait(30)
    updater.on_scan(True)
    return 0


def _run_killed_at(root: Path, key, release, n: int) -> bool:
    """Run the install in a child killed at step n; True if it finished before step n."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            code = _child(root, key, release, n)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return False
    assert os.WEXITSTATUS(status) == 0, f"the child failed at step {n}"
    return True


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An OTA folder with models-1 in force, and two releases to install over it."""
    tmp = tmp_path_factory.mktemp("powercut")
    key = generate_signing_key()
    first = make_release(tmp, key, "models-1")
    good = make_release(tmp, key, "models-2", model={"total": "14.64", "v": 2})
    broken = make_release(tmp, key, "models-3", model={"total": "0.00"})
    base = tmp / "base"
    updater = Updater(
        ota_config(base, key, probation_scans=0),
        FakeHost(),
        lambda r: None,
        transport=serve([first]),
    )
    updater.recover()
    updater.start(ota_command(first))
    updater.wait(30)
    assert updater.releases() == {"release.models": "models-1"}
    return tmp, key, base, good, broken


@pytest.mark.parametrize("which", ["good", "broken"])
def test_a_kill_at_any_step_leaves_a_verified_slot_in_force(setup, which: str) -> None:
    tmp, key, base, good, broken = setup
    release = good if which == "good" else broken
    name = ReleaseManifest.model_validate_json(release.manifest).release
    finished = False
    for n in range(1, MAX_STEPS):
        root = tmp / f"{which}-{n}"
        shutil.copytree(base, root, symlinks=True)
        finished = _run_killed_at(root, key, release, n)
        store = SlotStore(root / "ota" / "models")
        current = store.current()
        assert current is not None, f"step {n}: no release in force"
        manifest = store.verify(current, [key.public_key()])  # complete and signed
        assert manifest.release in {"models-1", name}

        # the agent starts again: it settles the interrupted update
        results: list[CommandResult] = []
        host = FakeHost()
        updater = Updater(ota_config(root, key, probation_scans=1), host, results.append)
        models_dir = updater.recover()
        updater.on_scan(True)  # the first real scan (finishes a probation)
        state = store.read_state()
        assert state is None, f"step {n}: update left half-done: {state}"
        final = store.current()
        assert final is not None
        in_force = store.verify(final, [key.public_key()]).release
        model = host.build_reader(store.current_dir()).model
        if which == "broken":
            assert in_force == "models-1", f"step {n}: the broken release stayed in force"
        else:
            assert in_force in {"models-1", "models-2"}
        assert model["total"] == "14.64"
        assert models_dir is None or models_dir.parent == store.slots
        if finished:
            break
    assert finished, f"the install never finished within {MAX_STEPS} steps"
    print(f"{which}: {n} kill points")
    assert n > 10, "the kill points covered the whole install"
