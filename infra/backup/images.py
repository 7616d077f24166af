"""Copies of the image store: new and changed files only, each checked by sha256 after copying.

Images are content-addressed and never rewritten, so a copy only ever adds files; nothing is
deleted from the destination (images are kept 7 years; the object store's lifecycle rules, not
this copy, expire them). For S3 in production use bucket replication or `aws s3 sync`; this
covers the local store and a mounted backup volume.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

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
