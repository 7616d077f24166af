"""The image store config union (keyed on `type`) and the one factory that builds a store."""

from __future__ import annotations

from server.images.base import (
    ImageNotFoundError,
    ImageStore,
    ImageStoreError,
    ListableImageStore,
    sha256_hex,
)
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.images.s3 import S3ImageStore, S3ImageStoreConfig

#: Union of every store plugin's config (`RM_IMAGE_STORE__TYPE`: local or s3).
ImageStoreConfig = LocalImageStoreConfig | S3ImageStoreConfig

__all__ = [
    "ImageNotFoundError",
    "ImageStore",
    "ImageStoreConfig",
    "ImageStoreError",
    "ListableImageStore",
    "LocalImageStoreConfig",
    "S3ImageStoreConfig",
    "build_image_store",
    "sha256_hex",
]


def build_image_store(config: ImageStoreConfig) -> ListableImageStore:
    """The store `config` describes."""
    if isinstance(config, LocalImageStoreConfig):
        return LocalImageStore(config)
    if isinstance(config, S3ImageStoreConfig):
        return S3ImageStore(config)
    raise ValueError(f"unknown image store type {config.type!r}; allowed: local, s3")
