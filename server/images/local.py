"""Image store plugin `local`: a directory on disk, one file per digest, atomic writes."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from server.images.base import ImageNotFoundError, sha256_hex

logger = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class LocalImageStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local"] = "local"
    root: Path = Field(default=Path("./var/images"), description="Directory holding the images.")


class LocalImageStore:
    """Files at ``root/ab/cd/abcd...``; written to a temp file, fsynced, then renamed."""

    def __init__(self, config: LocalImageStoreConfig) -> None:
        self.root = config.root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if not _DIGEST.match(sha256):
            raise ImageNotFoundError(f"{sha256!r} is not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        logger.debug("stored image %s (%d bytes)", digest, len(data))
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise ImageNotFoundError(f"no image {sha256} in {self.root}") from exc

    def delete(self, sha256: str) -> bool:
        try:
            self._path(sha256).unlink()
        except (FileNotFoundError, ImageNotFoundError):
            return False
        logger.debug("deleted image %s", sha256)
        return True

    def digests(self) -> Iterator[str]:
        """Every digest stored (files named by their SHA-256 under ``ab/cd/``)."""
        for path in self.root.glob("??/??/*"):
            if _DIGEST.match(path.name) and path.is_file():
                yield path.name

    def exists(self, sha256: str) -> bool:
        try:
            return self._path(sha256).exists()
        except ImageNotFoundError:
            return False
