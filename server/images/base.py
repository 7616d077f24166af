"""The image store's contract: content-addressed blobs keyed by their SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol


class ImageNotFoundError(LookupError):
    """The store holds no blob with this digest."""


class ImageStoreError(OSError):
    """The store could not be reached or refused the operation (retry later; an `OSError`,
    like a local disk failure, so ingest retries the batch instead of dead-lettering it)."""


class ImageStore(Protocol):
    """A content-addressed store of image bytes.

    - `put` SHALL store `data` durably before returning and return its lowercase hex SHA-256;
      putting the same bytes again SHALL be harmless and return the same key.
    - `get` SHALL return exactly the bytes put under `sha256`, or raise `ImageNotFoundError`.
    - `delete` SHALL remove the blob and return True, or return False if there was none; the
      caller makes sure no receipt still refers to it (blobs are shared by digest).
    - Implementations MAY be used from several threads and processes at once.
    """

    def put(self, data: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool: ...


class ListableImageStore(ImageStore, Protocol):
    """A store that can also list what it holds (backups and disaster-recovery checks).

    - `digests` SHALL yield the SHA-256 of every blob in the store, each once, in no
      particular order.
    """

    def digests(self) -> Iterator[str]: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
