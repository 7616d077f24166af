"""Copies of the image store: new and changed files only, each checked by sha256 after copying.

Images are content-addressed and never rewritten, so a copy only ever adds files; nothing is
deleted from the destination (images are kept 7 years; the object store's lifecycle rules, not
this copy, expire them). `copy_images` copies a local store's folder; `backup_store` copies any
store (local or S3) through its interface into the same layout, and `restore_store` puts a
backup back into an empty store (disaster recovery, infra/RUNBOOK.md). `missing_images` is the
check `receipts backup verify` runs: every image a dump refers to has an intact copy. For S3 in
production, bucket versioning and replication come first; this copy is the off-site one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from server.images.base import ImageStore, ListableImageStore

logger = logging.getLogger(__name__)

_SHA256_NAME = re.compile(r"^[0-9a-f]{64}")


class ImageCopyError(RuntimeError):
    """A copied file does not match its source or its content address."""


@dataclass
class CopyReport:
    copied: int = 0
    unchanged: int = 0
    bytes_copied: int = 0


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_images(source: Path, dest: Path) -> CopyReport:
    """Copy every file under `source` missing (or different in size) under `dest`."""
    if not source.is_dir():
        raise FileNotFoundError(f"image store {source} is not a folder")
    report = CopyReport()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = dest / path.relative_to(source)
        size = path.stat().st_size
        if target.exists() and target.stat().st_size == size:
            report.unchanged += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(path, partial)
        digest = _digest(partial)
        if digest != _digest(path):
            partial.unlink()
            raise ImageCopyError(f"copy of {path} differs from the source; disk or network fault")
        m = _SHA256_NAME.match(path.name)
        if m and m.group(0) != digest:
            partial.unlink()
            raise ImageCopyError(f"{path} does not hold the content its name promises")
        os.replace(partial, target)
        report.copied += 1
        report.bytes_copied += size
    logger.info(
        "image copy %s -> %s: %d copied, %d already there",
        source,
        dest,
        report.copied,
        report.unchanged,
    )
    return report


def _backup_path(dest: Path, digest: str) -> Path:
    """Where a digest's copy lives: the image store's own layout (``ab/cd/abcd...``)."""
    return dest / digest[:2] / digest[2:4] / digest


def backup_store(store: ListableImageStore, dest: Path) -> CopyReport:
    """Copy every image of `store` (local or S3) that `dest` lacks, in the store's layout.

    Each blob is checked against its digest (the store's `get` does, and again here) before
    it is renamed into place, so a copy never holds bytes its name does not promise.
    """
    report = CopyReport()
    for digest in store.digests():
        target = _backup_path(dest, digest)
        if target.exists():
            report.unchanged += 1
            continue
        data = store.get(digest)
        if hashlib.sha256(data).hexdigest() != digest:
            raise ImageCopyError(f"image {digest} does not hold the content its name promises")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
        report.copied += 1
        report.bytes_copied += len(data)
    logger.info("image store backup -> %s: %d copied, %d already there", dest, *_counts(report))
    return report


def restore_store(source: Path, store: ImageStore) -> CopyReport:
    """Put every image of the backup folder `source` into `store` (those it lacks).

    The store computes each blob's digest; a file whose name is not that digest is refused
    (`ImageCopyError`), so a damaged backup is found here, not when a receipt is opened.
    """
    if not source.is_dir():
        raise FileNotFoundError(f"image backup {source} is not a folder")
    report = CopyReport()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        m = _SHA256_NAME.match(path.name)
        if m is None or path.name.endswith(".partial"):
            continue
        if store.exists(m.group(0)):
            report.unchanged += 1
            continue
        data = path.read_bytes()
        if store.put(data) != m.group(0):
            raise ImageCopyError(f"{path} does not hold the content its name promises")
        report.copied += 1
        report.bytes_copied += len(data)
    logger.info("image restore %s: %d restored, %d already there", source, *_counts(report))
    return report


def missing_images(digests: Iterable[str], backup: Path) -> list[str]:
    """The digests (of a dump's `receipt_images`) whose copy under `backup` is absent or
    damaged, in either layout the copies use (``ab/cd/<digest>`` or a flat ``<digest>``
    found by name)."""
    missing = []
    for digest in digests:
        path = _backup_path(backup, digest)
        if not path.is_file():
            found = next(iter(backup.rglob(digest)), None) if backup.is_dir() else None
            path = found if found is not None else path
        if not path.is_file() or _digest(path) != digest:
            missing.append(digest)
    return missing


def _counts(report: CopyReport) -> tuple[int, int]:
    return report.copied, report.unchanged
