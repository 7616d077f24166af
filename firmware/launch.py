"""Starts `receipts` on the agent release in force, and switches back a new one that can't start.

The agent unit runs::

    python -m firmware.launch --ota-dir /var/lib/receipts/ota agent --config .../agent.yaml

Before anything of the agent is imported, this looks at the agent's A/B slots
(``<ota-dir>/agent``, see edge_agent/ota/slots.py):

- when a new agent release is on trial (``state.json``: stage ``restart`` or ``probation``), it
  counts this start in ``boots``; past ``max_boots`` starts without a successful scan (the agent
  resets the count on each one, and after five minutes of running) it points ``current`` back
  at the previous slot and records why, so the previous agent reports the rollback;
- when ``current`` names a slot with ``python/``, whose files match the slot's manifest, that
  folder goes first on ``sys.path`` and ``RM_AGENT_RELEASE`` names the release. A damaged slot
  is skipped (the installed code runs; the agent then repairs the pointer).

Standard library only, on purpose: this must work whatever the release on trial contains.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

RELEASE_ENV = "RM_AGENT_RELEASE"
DEFAULT_MAX_BOOTS = 3


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.launch.tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _current(store: Path) -> str | None:
    try:
        return Path(os.readlink(store / "current")).name
    except OSError:
        return None


def _switch(store: Path, slot: str | None) -> None:
    pointer = store / "current"
    if slot is None:
        pointer.unlink(missing_ok=True)
    else:
        tmp = store / "current.new"
        tmp.unlink(missing_ok=True)
        os.symlink(f"slots/{slot}", tmp)
        os.replace(tmp, pointer)
    _fsync_dir(store)


def count_boot(store: Path) -> str | None:
    """Count a start of an agent release on trial; roll it back past its limit. Returns a note."""
    state_path = store / "state.json"
    state = _read_json(state_path)
    if not isinstance(state, dict) or state.get("stage") not in ("restart", "probation"):
        return None
    if state.get("slot") != _current(store):
        return None
    boots = int(state.get("boots", 0)) + 1
    limit = int(state.get("max_boots", DEFAULT_MAX_BOOTS))
    if boots <= limit:
        state["boots"] = boots
        _write_json(state_path, state)
        return f"agent release {state.get('release')} on trial: start {boots} of {limit}"
    fallback = state.get("fallback")
    state["outcome"] = (
        f"rolled back to {f'slot {fallback}' if fallback else 'the installed agent'}: the new "
        f"agent started {boots - 1} times without reading a receipt"
    )
    state["reason"] = "boot"
    _write_json(state_path, state)
    _switch(store, fallback)
    return f"agent release {state.get('release')}: {state['outcome']}"


def _intact(slot: Path) -> tuple[str, Path] | None:
    """(release, python folder) if the slot's python/ files match its manifest."""
    manifest = _read_json(slot / "manifest.json")
    python = slot / "python"
    if not isinstance(manifest, dict) or not python.is_dir():
        return None
    for entry in manifest.get("files", []):
        path = str(entry.get("path", ""))
        if not path.startswith("python/"):
            continue
        try:
            data = (slot / path).read_bytes()
        except OSError:
            return None
        if len(data) != entry.get("size") or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            return None
    return str(manifest.get("release", "")), python


def prepare(ota_dir: Path) -> str | None:
    """Do the boot accounting and put the release's code first on the path; returns it."""
    store = ota_dir / "agent"
    if not store.is_dir():
        return None
    with contextlib.suppress(OSError):
        note = count_boot(store)
        if note:
            print(f"firmware.launch: {note}", file=sys.stderr)
    slot = _current(store)
    if slot is None:
        return None
    found = _intact(store / "slots" / slot)
    if found is None:
        print(
            f"firmware.launch: agent slot {slot} is damaged; using the installed agent",
            file=sys.stderr,
        )
        return None
    release, python = found
    sys.path.insert(0, str(python))
    os.environ[RELEASE_ENV] = release
    return release


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    ota_dir: Path | None = None
    if len(args) >= 2 and args[0] == "--ota-dir":
        ota_dir, args = Path(args[1]), args[2:]
    if ota_dir is not None:
        prepare(ota_dir)
    from models.cli import main as receipts

    sys.argv = ["receipts", *args]
    receipts()


if __name__ == "__main__":
    main()
