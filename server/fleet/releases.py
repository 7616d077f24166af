"""Release artifacts on the server: upload (checked against the signed manifest) and links.

**Download links are signed and expiring, not device-authenticated.** A scanner's credentials
are its broker password and client certificate; the HTTP API knows only organisations' bearer
tokens, and `edge_agent.ota.download` does a plain GET of the URL in the ``ota`` command. So the
server puts an HMAC-SHA256 (key: ``RM_SECRET_KEY``) over the release id and an expiry into the
URL, and the link expires with the command that carries it; the command travels only in the
device's own, ACL-confined ``cmd/`` topic. The link gates who can fetch the artifact; its
integrity is the manifest's Ed25519 signature, which the scanner checks before downloading.

Artifacts are stored in ``RM_FLEET__RELEASES_DIR`` under their sha256 (content-addressed, so a
re-upload of the same bytes is harmless).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from provisioning.release import MAX_MANIFEST_BYTES, ReleaseManifest
from provisioning.signing import SignatureError, load_public_keys, verify_manifest
from server.api.errors import ApiError
from server.fleet.models import Release
from server.fleet.rollout_repository import RolloutRepository
from server.fleet.settings import FleetSettings

ARTIFACT_PATH = "/api/v1/fleet/releases/{id}/artifact"


def _mac(key: bytes, release_id: uuid.UUID, expires: int) -> str:
    digest = hmac.new(key, f"artifact:{release_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def artifact_url(base: str, key: bytes, release_id: uuid.UUID, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    path = ARTIFACT_PATH.format(id=release_id)
    return f"{base.rstrip('/')}{path}?expires={expires}&sig={_mac(key, release_id, expires)}"


def link_valid(
    key: bytes | None, release_id: uuid.UUID, expires: int, sig: str, now: dt.datetime
) -> bool:
    if key is None or expires < now.timestamp():
        return False
    return hmac.compare_digest(_mac(key, release_id, expires), sig)


def artifact_path(settings: FleetSettings, release: Release) -> Path:
    if settings.releases_dir is None:
        raise ApiError(503, "releases_not_configured", "RM_FLEET__RELEASES_DIR is not set")
    return settings.releases_dir / f"{release.artifact_sha256}.tar.gz"


def register(
    repo: RolloutRepository,
    settings: FleetSettings,
    manifest: bytes,
    signature: str,
    artifact: BinaryIO,
    *,
    now: dt.datetime,
) -> Release:
    """Check and store an uploaded release; the artifact must be what the manifest pins."""
    if settings.releases_dir is None:
        raise ApiError(503, "releases_not_configured", "RM_FLEET__RELEASES_DIR is not set")
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise ApiError(413, "manifest_too_large", f"a manifest has at most {MAX_MANIFEST_BYTES} B")
    if settings.release_public_keys:
        try:
            verify_manifest(load_public_keys(settings.release_public_keys), manifest, signature)
        except SignatureError as exc:
            raise ApiError(422, "bad_signature", str(exc)) from exc
    try:
        parsed = ReleaseManifest.model_validate_json(manifest)
    except ValidationError as exc:
        raise ApiError(422, "bad_manifest", str(exc)) from exc
    if repo.release_named(parsed.release) is not None:
        raise ApiError(409, "release_exists", f"release {parsed.release!r} is already uploaded")
    settings.releases_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.releases_dir, suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := artifact.read(1 << 20):
                size += len(chunk)
                if size > parsed.artifact.size:
                    raise ApiError(422, "artifact_mismatch", "the artifact is larger than pinned")
                digest.update(chunk)
                out.write(chunk)
        if (size, digest.hexdigest()) != (parsed.artifact.size, parsed.artifact.sha256):
            raise ApiError(422, "artifact_mismatch", "size or sha256 differ from the manifest")
        os.replace(tmp, settings.releases_dir / f"{parsed.artifact.sha256}.tar.gz")
    finally:
        Path(tmp).unlink(missing_ok=True)
    release = Release(
        organization_id=repo.organization_id,
        name=parsed.release,
        kind=parsed.kind,
        manifest=manifest.decode(),
        signature=signature,
        artifact_size=size,
        artifact_sha256=parsed.artifact.sha256,
        created_at=now,
    )
    repo.add(release)
    return release
