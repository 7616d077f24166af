"""A/B slots on disk: two complete releases side by side and a pointer naming the one in force.

Layout of one slot store (``<ota.dir>/models`` or ``<ota.dir>/agent``)::

    slots/a/         a complete release: its files, manifest.json and manifest.sig
    slots/b/
    slots/.b.new/    staging: a release being unpacked (never pointed at)
    current          symlink -> slots/a   (absent: the factory release shipped with the agent)
    state.json       the update on trial, if any (`edge_agent.ota.trial`)
    download/        partial and finished artifact downloads

Invariants that make a power cut at any moment harmless:

- a release is unpacked and checked in ``slots/.X.new`` and only then renamed to ``slots/X``
  (the old ``slots/X`` is renamed away first); a folder named ``slots/X`` is therefore always
  complete, and the slot `current` names is never touched while it is named;
- `current` is switched by creating ``current.new`` and renaming it over ``current``
  (`os.replace`, atomic), then fsyncing the folder: after a crash it names the old slot or the
  new one, both complete and verified;
- `verify` re-checks a slot against its signed manifest (every file's size and sha256); the
  agent does so on every start and falls back to the other slot, then the factory release, if
  the current one is damaged (a failing SD card).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.fsutil import atomic_write, atomic_write_json, fsync_dir, read_json
from provisioning.release import ReleaseManifest, safe_relative_path
from provisioning.signing import verify_manifest

log = logging.getLogger(__name__)

SlotName = Literal["a", "b"]
SLOTS: tuple[SlotName, SlotName] = ("a", "b")


class SlotError(RuntimeError):
    """A slot or an artifact is not what its manifest says; the message says what differs."""


class SlotStore:
    """The A/B slots of one kind of release; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.slots = root / "slots"
        self.pointer = root / "current"
        self.state_path = root / "state.json"
        self.downloads = root / "download"
        for folder in (self.slots, self.downloads):
            folder.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ pointer

    def current(self) -> SlotName | None:
        """The slot in force, or None for the factory release."""
        try:
            target = os.readlink(self.pointer)
        except FileNotFoundError:
            return None
        name = Path(target).name
        if name not in SLOTS:
            raise SlotError(f"{self.pointer} points at {target!r}, not at slots/a or slots/b")
        return name

    def inactive(self) -> SlotName:
        return "b" if self.current() == "a" else "a"

    def slot_dir(self, name: SlotName) -> Path:
        return self.slots / name

    def current_dir(self) -> Path | None:
        name = self.current()
        return None if name is None else self.slot_dir(name)

    def switch(self, name: SlotName | None) -> None:
        """Point `current` at slot `name` (None: the factory release), atomically and durably."""
        if name is None:
            self.pointer.unlink(missing_ok=True)
        else:
            tmp = self.root / "current.new"
            tmp.unlink(missing_ok=True)
            os.symlink(f"slots/{name}", tmp)
            os.replace(tmp, self.pointer)
        fsync_dir(self.root)
        log.info("%s: current release is now %s", self.root, f"slot {name}" if name else "factory")

    # ------------------------------------------------------------------ installing

    def staging(self, name: SlotName) -> Path:
        """An empty staging folder for slot `name`."""
        stage = self.slots / f".{name}.new"
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        return stage

    def install_staged(self, name: SlotName) -> Path:
        """Replace slot `name` (which must not be current) with its staging folder."""
        if name == self.current():
            raise SlotError(f"slot {name} is in force; refusing to overwrite it")
        stage, target, old = (
            self.slots / f".{name}.new",
            self.slot_dir(name),
            self.slots / f".{name}.old",
        )
        _fsync_tree(stage)
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(stage, target)
        fsync_dir(self.slots)
        shutil.rmtree(old, ignore_errors=True)
        return target

    def unpack(
        self,
        artifact: Path,
        stage: Path,
        manifest: ReleaseManifest,
        manifest_bytes: bytes,
        signature: str,
    ) -> None:
        """Unpack `artifact` into `stage`: exactly the manifest's files, each checked.

        Only regular files (and folders) are taken; links, devices and paths leaving the folder
        are refused. Writes the slot's own manifest.json/manifest.sig last.
        """
        expected = {f.path: f for f in manifest.files}
        seen: set[str] = set()
        try:
            tar = tarfile.open(artifact, mode="r:gz")  # noqa: SIM115 - closed by `with` below
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise SlotError(f"the artifact is not a tar.gz: {exc}") from exc
        with tar, _damaged_as_slot_error():
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir():
                    continue
                try:
                    safe_relative_path(name)
                except ValueError as exc:
                    raise SlotError(f"artifact member refused: {exc}") from None
                if not member.isreg():
                    raise SlotError(f"artifact member {name} is not a regular file")
                entry = expected.get(name)
                if entry is None:
                    raise SlotError(f"artifact member {name} is not in the manifest")
                if name in seen:
                    raise SlotError(f"artifact member {name} appears twice")
                if member.size != entry.size:
                    raise SlotError(f"{name}: {member.size} bytes, manifest says {entry.size}")
                source = tar.extractfile(member)
                if source is None:
                    raise SlotError(f"artifact member {name} cannot be read")
                digest = _copy(source, stage / name)
                if digest != entry.sha256:
                    raise SlotError(f"{name}: sha256 {digest}, manifest says {entry.sha256}")
                seen.add(name)
        missing = sorted(set(expected) - seen)
        if missing:
            raise SlotError(f"artifact lacks files the manifest lists: {missing[:5]}")
        (stage / "manifest.sig").write_text(signature + "\n")
        (stage / "manifest.json").write_bytes(manifest_bytes)

    # ------------------------------------------------------------------ checking

    def read_manifest(self, name: SlotName) -> ReleaseManifest:
        """The slot's manifest, unverified (for naming; use `verify` before trusting it)."""
        return ReleaseManifest.model_validate_json(
            (self.slot_dir(name) / "manifest.json").read_bytes()
        )

    def verify(self, name: SlotName, keys: Iterable[Ed25519PublicKey]) -> ReleaseManifest:
        """Check slot `name` is complete and signed: raises `SlotError` saying what is wrong."""
        folder = self.slot_dir(name)
        try:
            manifest_bytes = (folder / "manifest.json").read_bytes()
            signature = (folder / "manifest.sig").read_text().strip()
        except OSError as exc:
            raise SlotError(f"slot {name} is incomplete: {exc}") from exc
        try:
            verify_manifest(keys, manifest_bytes, signature)
            manifest = ReleaseManifest.model_validate_json(manifest_bytes)
        except ValueError as exc:
            raise SlotError(f"slot {name}: {exc}") from exc
        for entry in manifest.files:
            path = folder / entry.path
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise SlotError(f"slot {name}: {entry.path} is missing ({exc})") from exc
            if size != entry.size or _sha256(path) != entry.sha256:
                raise SlotError(f"slot {name}: {entry.path} differs from its manifest")
        return manifest

    # ------------------------------------------------------------------ trial state

    def read_state(self) -> dict[str, Any] | None:
        try:
            state = read_json(self.state_path)
        except (OSError, ValueError) as exc:
            log.error("update state %s unreadable (%s): ignored", self.state_path, exc)
            return None
        return state if isinstance(state, dict) else None

    def write_state(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.state_path, state)

    def clear_state(self) -> None:
        self.state_path.unlink(missing_ok=True)
        fsync_dir(self.root)

    def clean_downloads(self, keep: Path | None = None) -> None:
        for path in self.downloads.iterdir():
            if path != keep:
                path.unlink(missing_ok=True)


def _copy(source: Any, target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under `root` (before it is renamed into place)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


__all__ = ["SLOTS", "SlotError", "SlotName", "SlotStore", "atomic_write"]


@contextlib.contextmanager
def _damaged_as_slot_error() -> Iterator[None]:
    """A truncated or corrupt archive is a `SlotError`."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise SlotError(f"the artifact is damaged: {type(exc).__name__}: {exc}") from exc
