"""Release artifacts for over-the-air updates: the signed manifest, and how to build one.

A release is two things:

- the **artifact**: a gzip'd tar of plain files (model files, ``pipeline.yaml``, self-test
  receipts; for ``kind: agent`` also ``python/``), served over HTTPS by the server;
- the **manifest**: JSON naming the release and its kind, pinning the artifact (size, sha256)
  and every file in it (path, size, sha256), and listing the self-test cases: sample receipt
  images shipped in the artifact with the fields the new pipeline must read from them. The
  server signs the manifest's bytes with Ed25519 (`provisioning.signing`).

The server tells a scanner to install a release with an ``ota`` command whose args are
`OtaArgs`: the artifact URL, the manifest text and its signature. The scanner verifies the
signature before downloading anything, refuses an artifact larger than the manifest says,
checks its sha256, unpacks it (plain files only, exactly the manifest's list) and checks each
file. See edge_agent/OPERATIONS.md ("Updates") for what happens next on the device.

`build_release(source_dir, artifact_path, ...)` packs a folder reproducibly (sorted, zero
mtimes and owners) and returns the manifest bytes and signature to publish.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.receipt import ReceiptFields
from provisioning.signing import sign_manifest

MANIFEST_FORMAT: Literal[1] = 1
#: File names a slot keeps for itself; an artifact may not contain them.
RESERVED_NAMES = frozenset({"manifest.json", "manifest.sig"})
#: Receipt fields a self-test case may expect (the single-valued ones).
SELFTEST_FIELDS = tuple(
    name for name, f in ReceiptFields.model_fields.items() if "list" not in str(f.annotation)
)
#: Largest manifest text accepted in an ``ota`` command (the command must fit in 64 KiB).
MAX_MANIFEST_BYTES = 48 << 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def safe_relative_path(path: str) -> str:
    """`path` if it is a plain relative POSIX path inside a folder, else ValueError."""
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or "\0" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"{path!r} is not a plain relative path (no '..', '/' prefix or '\\')")
    return path


class FileEntry(_Strict):
    path: str = Field(description="Relative POSIX path inside the artifact and the slot.")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        safe_relative_path(v)
        if v in RESERVED_NAMES:
            raise ValueError(f"{v} is reserved for the slot's own copy of the manifest")
        return v


class ArtifactRef(_Strict):
    size: int = Field(ge=1, description="Bytes of the artifact file (tar.gz).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SelfTestCase(_Strict):
    """One sample receipt and the fields the new pipeline must read from it."""

    image: str = Field(description="Path of the image in the artifact.")
    expect: dict[str, str] = Field(
        min_length=1,
        description="Field name -> expected value as text (dates ISO 8601, amounts as printed).",
    )

    @field_validator("expect")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(SELFTEST_FIELDS))
        if unknown:
            raise ValueError(f"unknown receipt fields {unknown}; allowed: {list(SELFTEST_FIELDS)}")
        return v


class ReleaseManifest(_Strict):
    """What a release is; signed by the server, verified by the scanner before anything else."""

    format: Literal[1] = MANIFEST_FORMAT
    release: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$", description="Release name, e.g. models-7."
    )
    kind: Literal["models", "agent"] = Field(
        description="models: files for the read pipeline; agent: also the agent's code (python/)."
    )
    created_at: dt.datetime
    artifact: ArtifactRef
    files: list[FileEntry] = Field(min_length=1)
    selftest: list[SelfTestCase] = Field(min_length=1)
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ReleaseManifest:
        paths = [f.path for f in self.files]
        if len(paths) != len(set(paths)):
            raise ValueError("files lists a path twice")
        missing = sorted({c.image for c in self.selftest} - set(paths))
        if missing:
            raise ValueError(f"self-test images not in files: {missing}")
        if self.kind == "agent" and not any(p.startswith("python/") for p in paths):
            raise ValueError("an agent release carries its code under python/")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"


class OtaArgs(_Strict):
    """Args of the ``ota`` command."""

    url: str = Field(pattern=r"^https?://", description="Where the artifact is downloaded from.")
    manifest: str = Field(
        max_length=MAX_MANIFEST_BYTES, description="The manifest's exact JSON text (signed)."
    )
    signature: str = Field(description="Base64 Ed25519 signature of the manifest's UTF-8 bytes.")


@dataclass(frozen=True)
class Release:
    """A built release: the artifact on disk and the signed manifest that goes with it."""

    artifact_path: Path
    manifest: bytes
    signature: str

    def ota_args(self, url: str) -> OtaArgs:
        return OtaArgs(url=url, manifest=self.manifest.decode(), signature=self.signature)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pack(source_dir: Path) -> tuple[bytes, list[FileEntry]]:
    """A reproducible tar.gz of every regular file under `source_dir`, and their entries."""
    files = sorted(p for p in source_dir.rglob("*") if p.is_file() and not p.is_symlink())
    entries: list[FileEntry] = []
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            rel = path.relative_to(source_dir).as_posix()
            data = path.read_bytes()
            entries.append(
                FileEntry(path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            )
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0), entries


def build_release(
    source_dir: Path,
    artifact_path: Path,
    *,
    release: str,
    kind: Literal["models", "agent"],
    selftest: list[SelfTestCase],
    key: Ed25519PrivateKey,
    notes: str = "",
    created_at: dt.datetime | None = None,
) -> Release:
    """Pack `source_dir` into `artifact_path` and sign a manifest for it."""
    data, entries = pack(source_dir)
    artifact_path.parent.mkdir(parents=True, exist_ok=True)
    artifact_path.write_bytes(data)
    manifest = ReleaseManifest(
        release=release,
        kind=kind,
        created_at=created_at or dt.datetime.now(dt.UTC),
        artifact=ArtifactRef(size=len(data), sha256=hashlib.sha256(data).hexdigest()),
        files=entries,
        selftest=selftest,
        notes=notes,
    ).to_bytes()
    return Release(artifact_path, manifest, sign_manifest(key, manifest))
