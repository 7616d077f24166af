"""`manifest.json`: what each model file in a model folder is, and its checksum, checked before use.

A model folder is `models/artifacts/` in the repository, or its copy inside an OTA release
(a folder of the slot: the slot's own `manifest.json` is the signed release manifest). Its
`manifest.json` lists the models by name (``recognizer``, ``detector``, ``finder``): file,
version, sha256, size, input spec, charset (recognizer), training data and metrics. A file is
loaded only after its sha256 matches the manifest (`verify_entry`), so a truncated download or a
tampered file is refused with both digests named instead of being run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_NAME = "manifest.json"
SCHEMA = 1


class ManifestError(ValueError):
    """The manifest is missing or malformed, or a model file does not match it."""


class ModelEntry(BaseModel):
    """One model file of the folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(
        pattern=r"^[A-Za-z0-9._-]+$", title="File", description="File name in the folder."
    )
    version: str = Field(min_length=1, title="Version", description="e.g. 2026.11.24-e12")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", title="SHA-256 of the file")
    bytes: int = Field(ge=1, title="Size in bytes")
    precision: str = Field(default="int8", title="Weights/activations: int8 or float")
    input: dict[str, Any] = Field(
        default_factory=dict,
        title="Input spec",
        description="Shape, range, layout of the input, e.g. height 32, grey, [0, 1].",
    )
    charset: str | None = Field(
        default=None,
        title="Charset",
        description="Recognizer only: class i is charset[i - 1], class 0 the CTC blank.",
    )
    training_data: list[str] = Field(default_factory=list, title="Training data")
    metrics: dict[str, Any] = Field(default_factory=dict, title="Metrics at export")


class Manifest(BaseModel):
    """The folder's manifest: a schema number and the models by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(default=SCHEMA, alias="schema")
    models: dict[str, ModelEntry] = Field(default_factory=dict)

    def entry(self, name: str, folder: Path) -> ModelEntry:
        """The entry `name`; ManifestError listing the known names if it has none."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ManifestError(
                f"{folder / MANIFEST_NAME} has no model named {name!r} (it has: {known})"
            ) from None


def load_manifest(folder: Path) -> Manifest:
    """Read and validate `folder/manifest.json`."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: {folder} is not a model folder") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} cannot be read as JSON: {exc}") from exc
    if isinstance(data, dict) and {"release", "files"} <= data.keys():
        raise ManifestError(
            f"{path} is an OTA release manifest, not a model folder's: point the model folder "
            f"at the folder of the release that holds the models' own manifest.json"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{path} is not a valid manifest: {exc}") from exc
    if manifest.schema_version != SCHEMA:
        raise ManifestError(
            f"{path} has schema {manifest.schema_version}; this version reads schema {SCHEMA}"
        )
    return manifest


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_entry(folder: Path, entry: ModelEntry) -> Path:
    """The model file's path once its size and sha256 match the entry; ManifestError if not."""
    path = folder / entry.file
    if not path.is_file():
        raise ManifestError(f"{path} is listed in {folder / MANIFEST_NAME} but does not exist")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ManifestError(
            f"{path} does not match its manifest: sha256 is {actual}, manifest says "
            f"{entry.sha256}; the file is damaged or was replaced: reinstall the model folder"
        )
    size = path.stat().st_size
    if size != entry.bytes:  # same digest, other size: only a broken manifest does this
        raise ManifestError(f"{path} is {size} bytes, manifest says {entry.bytes}")
    return path


def upsert_entry(folder: Path, name: str, entry: ModelEntry) -> Manifest:
    """Add or replace model `name` in `folder/manifest.json` (created if missing), atomically."""
    path = folder / MANIFEST_NAME
    manifest = load_manifest(folder) if path.exists() else Manifest()
    models = {**manifest.models, name: entry}
    updated = Manifest.model_validate({"schema": SCHEMA, "models": models})
    text = json.dumps(updated.model_dump(by_alias=True), ensure_ascii=False, indent=1) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide it from the agent's user
    Path(tmp).replace(path)
    return updated
