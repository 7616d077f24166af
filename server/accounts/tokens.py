"""Random tokens and signed links: session tokens (stored hashed), CSRF tokens, signed ids.

Invitation and reset links carry an id signed with the server's secret key (itsdangerous, with
a salt per purpose, so a signature made for one purpose is refused for another). The rows they
point at make them single-use and expiring; the signature makes them unguessable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from itsdangerous import BadSignature, URLSafeTimedSerializer


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; None never matches."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class LinkSigner:
    """Signs and checks ids for one purpose ("invitation", "password-reset")."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=f"rm-{purpose}")

    def sign(self, ident: uuid.UUID) -> str:
        return str(self._serializer.dumps(str(ident)))

    def unsign(self, token: str, max_age_s: float) -> uuid.UUID | None:
        """The id in `token`; None if forged, made for another purpose, or too old."""
        try:
            value = self._serializer.loads(token, max_age=int(max_age_s))
            return uuid.UUID(str(value))
        except (BadSignature, ValueError):
            return None


def anonymous_csrf(secret_key: str, browser_token: str) -> str:
    """The CSRF token of a browser not signed in, bound to its random `rm_anon` cookie."""
    return hmac.new(secret_key.encode(), f"csrf:{browser_token}".encode(), "sha256").hexdigest()
