"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile) and the policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()
#: Verified against when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-timing")


class PasswordPolicyError(ValueError):
    """A new password is refused; the message says what a good one needs."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")
    if password.strip() == "":
        raise PasswordPolicyError("a password cannot be only spaces")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, spends the same time and says no."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
