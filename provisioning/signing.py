"""Ed25519 signatures over release manifests: the server signs, every scanner verifies.

The signature covers the manifest's exact bytes (no re-serialisation, so there is nothing to
canonicalise): a scanner verifies those bytes first and only then parses them. The manifest in
turn pins the artifact (size, sha256) and every file in it (`provisioning.release`), so one
signature check proves the whole release.

Keys: the signing key is an Ed25519 private key in PKCS#8 PEM (keep it off the broker and API
hosts if you can, optionally encrypted with a passphrase); scanners hold the public key (PEM,
SubjectPublicKeyInfo). A scanner may trust several public keys at once, which is how the signing
key is rotated: ship the new public key, then sign with the new key. `key_id` names a key in
logs and in the `ota` command (the first 16 hex digits of SHA-256 of its raw 32 bytes).

Errors: `SignatureError` (a `ValueError`) for a bad, malformed or untrusted signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SignatureError(ValueError):
    """The manifest's signature is malformed, wrong, or made by a key this device doesn't trust."""


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


def load_public_keys(paths: Iterable[Path]) -> list[Ed25519PublicKey]:
    return [load_public_key(Path(p).read_bytes()) for p in paths]


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_manifest(key: Ed25519PrivateKey, manifest: bytes) -> str:
    """The signature of `manifest` (its exact bytes), base64."""
    return base64.b64encode(key.sign(manifest)).decode("ascii")


def verify_manifest(keys: Iterable[Ed25519PublicKey], manifest: bytes, signature: str) -> str:
    """Check that one of `keys` signed `manifest`; returns that key's id.

    Raises `SignatureError` otherwise. Parse the manifest only after this returned.
    """
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"the signature is not base64: {exc}") from exc
    if len(raw) != 64:
        raise SignatureError(f"an Ed25519 signature has 64 bytes, this one {len(raw)}")
    trusted = list(keys)
    if not trusted:
        raise SignatureError("no public key is configured to verify releases with")
    for key in trusted:
        try:
            key.verify(raw, manifest)
        except InvalidSignature:
            continue
        return key_id(key)
    ids = ", ".join(key_id(k) for k in trusted)
    raise SignatureError(f"the manifest's signature does not verify with the trusted keys ({ids})")
