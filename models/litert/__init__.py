"""Running the on-device models: checksummed manifests and the LiteRT interpreter around them."""

from models.litert.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    ModelEntry,
    load_manifest,
    sha256_file,
    upsert_entry,
    verify_entry,
)
from models.litert.runtime import LiteRTModel, RuntimeUnavailable, Timings, load_model

__all__ = [
    "MANIFEST_NAME",
    "LiteRTModel",
    "Manifest",
    "ManifestError",
    "ModelEntry",
    "RuntimeUnavailable",
    "Timings",
    "load_manifest",
    "load_model",
    "sha256_file",
    "upsert_entry",
    "verify_entry",
]
