"""The image store config union (keyed on `type`) and the one factory that builds a store."""

from __future__ import annotations

from server.images.base import ImageNotFoundError, ImageStore, sha256_hex
from server.images.local import LocalImageStore, LocalImageStoreConfig

#: Union of every store plugin's config; add S3 here as `LocalImageStoreConfig | S3...Config`.
ImageStoreConfig = LocalImageStoreConfig

__all__ = [
    "ImageNotFoundError",
    "ImageStore",
    "ImageStoreConfig",
    "LocalImageStoreConfig",
    "build_image_store",
    "sha256_hex",
]


def build_image_store(config: ImageStoreConfig) -> ImageStore:
    """The store `config` describes."""
    if isinstance(config, LocalImageStoreConfig):
        return LocalImageStore(config)
    raise ValueError(f"unknown image store type {config.type!r}; allowed: local")
