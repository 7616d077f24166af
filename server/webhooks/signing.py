"""Signing webhook bodies, and `verify_signature` for receivers (and the tests).

Every request carries::

    Receipts-Event-Id: 6f0c...               the event id: the same on every retry; dedupe on it
    Receipts-Event-Type: receipt.created
    Receipts-Signature: t=1732500000,v1=5257a869e7...

``v1`` is the hex HMAC-SHA256, keyed with the endpoint's secret (the whole ``whsec_...``
string, as UTF-8), of ``f"{t}.{body}"``: the Unix timestamp, a dot and the raw request body.
A receiver recomputes it over the raw bytes it received, compares in constant time and refuses a
timestamp more than a few minutes away from its clock (replays). While a secret is being
rotated a header may carry several ``v1=`` values; any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "Receipts-Signature"
EVENT_ID_HEADER = "Receipts-Event-Id"
EVENT_TYPE_HEADER = "Receipts-Event-Type"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old, or no signature matches."""


def new_secret() -> str:
    """A fresh signing secret (shown to the organisation once, at creation)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the `Receipts-Signature` header for `body` sent at `timestamp`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a `Receipts-Signature` header against the raw `body`; returns its timestamp.

    Raises `SignatureError` when the header is missing or malformed, the timestamp is more than
    `tolerance_s` from `now` (default: the clock), or no ``v1`` signature matches.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the timestamp of the signature is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("the signature header needs t=<unix time> and v1=<hex digest>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"the signature is {abs(current - timestamp):.0f} s away from now (allowed "
            f"{tolerance_s} s): a replay, or a clock out of sync"
        )
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches the body with this secret")
    return timestamp
