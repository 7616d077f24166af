"""The image store's contract: content-addressed blobs keyed by their SHA-256."""

from __future__ import annotations

import hashlib
from typing import Protocol


class ImageNotFoundError(LookupError):
    """The store holds no blob with this digest."""


class ImageStore(Protocol):
    """A content-addressed store of image bytes.

    - `put` SHALL store `data` durably before returning and return its lowercase hex SHA-256;
      putting the same bytes again SHALL be harmless and return the same key.
    - `get` SHALL return exactly the bytes put under `sha256`, or raise `ImageNotFoundError`.
    - Implementations MAY be used from several threads and processes at once.
    """

    def put(self, data: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...

    def exists(self, sha256: str) -> bool: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
