"""Ed25519 signatures over release manifests, and building a signed release."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from provisioning.release import ReleaseManifest, SelfTestCase, build_release, pack
from provisioning.signing import (
    SignatureError,
    generate_signing_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    sign_manifest,
    verify_manifest,
)


def test_a_signature_verifies_with_the_public_key_only() -> None:
    key = generate_signing_key()
    public = load_public_key(public_key_pem(key))
    signature = sign_manifest(key, b'{"release": "m1"}')
    assert verify_manifest([public], b'{"release": "m1"}', signature) == key_id(key)


def test_a_changed_byte_or_another_key_is_refused() -> None:
    key, other = generate_signing_key(), generate_signing_key()
    signature = sign_manifest(key, b'{"release": "m1"}')
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest([key.public_key()], b'{"release": "m2"}', signature)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest([other.public_key()], b'{"release": "m1"}', signature)
    with pytest.raises(SignatureError, match="not base64"):
        verify_manifest([key.public_key()], b"x", "***")
    with pytest.raises(SignatureError, match="64 bytes"):
        verify_manifest([key.public_key()], b"x", base64.b64encode(b"short").decode())
    with pytest.raises(SignatureError, match="no public key"):
        verify_manifest([], b"x", signature)


def test_rotation_trusts_either_key_of_a_keyring() -> None:
    old, new = generate_signing_key(), generate_signing_key()
    ring = [old.public_key(), new.public_key()]
    assert verify_manifest(ring, b"m", sign_manifest(new, b"m")) == key_id(new)
    assert verify_manifest(ring, b"m", sign_manifest(old, b"m")) == key_id(old)


def test_private_keys_round_trip_with_a_passphrase() -> None:
    key = generate_signing_key()
    pem = private_key_pem(key, b"secret")
    assert b"ENCRYPTED" in pem
    assert key_id(load_private_key(pem, b"secret")) == key_id(key)


def test_build_release_pins_the_artifact_and_each_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "selftest").mkdir(parents=True)
    (src / "pipeline.yaml").write_text("find_receipt: false\n")
    (src / "selftest" / "r1.png").write_bytes(b"png")
    key = generate_signing_key()
    release = build_release(
        src,
        tmp_path / "out" / "m1.tar.gz",
        release="models-1",
        kind="models",
        selftest=[SelfTestCase(image="selftest/r1.png", expect={"total": "14.64"})],
        key=key,
    )
    verify_manifest([key.public_key()], release.manifest, release.signature)
    manifest = ReleaseManifest.model_validate_json(release.manifest)
    assert [f.path for f in manifest.files] == ["pipeline.yaml", "selftest/r1.png"]
    assert manifest.artifact.size == release.artifact_path.stat().st_size
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(release.artifact_path.read_bytes()))) as t:
        assert sorted(t.getnames()) == ["pipeline.yaml", "selftest/r1.png"]
    assert pack(src)[0] == release.artifact_path.read_bytes(), "packing is reproducible"
    args = release.ota_args("https://h/a")
    assert args.manifest.encode() == release.manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": [{"path": "../x", "size": 1, "sha256": "0" * 64}]}, "plain relative path"),
        ({"files": [{"path": "manifest.json", "size": 1, "sha256": "0" * 64}]}, "reserved"),
        ({"selftest": [{"image": "nope.png", "expect": {"total": "1"}}]}, "not in files"),
        ({"selftest": [{"image": "a.png", "expect": {"colour": "red"}}]}, "unknown receipt"),
        ({"kind": "agent"}, "python/"),
    ],
)
def test_manifests_refuse_unsafe_or_inconsistent_content(change: dict, message: str) -> None:
    data = {
        "release": "m1",
        "kind": "models",
        "created_at": "2024-06-01T00:00:00Z",
        "artifact": {"size": 10, "sha256": "0" * 64},
        "files": [{"path": "a.png", "size": 1, "sha256": "0" * 64}],
        "selftest": [{"image": "a.png", "expect": {"total": "1.00"}}],
    } | change
    with pytest.raises(ValidationError, match=message):
        ReleaseManifest.model_validate(data)
