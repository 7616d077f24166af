"""Fetching a release into the inactive slot: room, download, unpack, verify.

`install_release` is steps 2 and 3 of an update (`edge_agent.ota.updater`), after the manifest's
signature was checked and before anything is switched, so a failure here leaves the release in
force untouched:

- **room**: the artifact, its unpacked files and `FREE_MARGIN` must fit on the data partition,
  which the outbox shares: an update never fills the disk under the receipts (``disk``);
- **download** (`edge_agent.ota.download`): exactly the size and sha256 the signed manifest
  pins, so a tampered or truncated artifact is refused before it is opened (``download``); a
  finished download is kept under its sha256 until installed, so a retry does not fetch again;
- **unpack** into the staging folder of the inactive slot, every file checked against the
  manifest, renamed into place, and the slot verified again against the signature
  (`edge_agent.ota.slots`) (``install``).

Failures raise `Failed` with the reason the command result carries.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.ota.config import OtaConfig
from edge_agent.ota.download import DownloadError, download
from edge_agent.ota.slots import SlotError, SlotName, SlotStore
from edge_agent.ota.trial import Failed
from provisioning.release import OtaArgs, ReleaseManifest

#: Free space an install must leave on the data partition (the outbox lives there too).
FREE_MARGIN = 128 << 20


def check_space(store: SlotStore, manifest: ReleaseManifest) -> None:
    """Refuse a release that would leave the data partition (and so the outbox) short."""
    needed = manifest.artifact.size + sum(f.size for f in manifest.files) + FREE_MARGIN
    free = shutil.disk_usage(store.root).free
    if free < needed:
        raise Failed(
            "disk",
            f"{free} bytes free, the release needs {needed} (artifact, unpacked files and "
            f"{FREE_MARGIN} to spare for the outbox)",
        )


def install_release(
    store: SlotStore,
    args: OtaArgs,
    manifest: ReleaseManifest,
    manifest_bytes: bytes,
    *,
    config: OtaConfig,
    keys: Iterable[Ed25519PublicKey],
    progress: Callable[[str, dict[str, int]], None],
    transport: httpx.BaseTransport | None = None,
) -> SlotName:
    """Download and unpack the release into the inactive slot; returns that slot."""
    artifact = store.downloads / f"{manifest.artifact.sha256}.tar.gz"
    store.clean_downloads(keep=artifact)
    check_space(store, manifest)
    if not artifact.exists():
        try:
            download(
                args.url,
                artifact,
                size=manifest.artifact.size,
                sha256=manifest.artifact.sha256,
                config=config,
                progress=lambda got, size: progress("download", {"received": got, "size": size}),
                transport=transport,
            )
        except (DownloadError, OSError) as exc:
            raise Failed("download", str(exc)) from exc
    progress("install", {})
    slot = store.inactive()
    try:
        store.unpack(artifact, store.staging(slot), manifest, manifest_bytes, args.signature)
        store.install_staged(slot)
        store.verify(slot, keys)
    except (SlotError, OSError) as exc:
        raise Failed("install", str(exc)) from exc
    store.clean_downloads()
    return slot
