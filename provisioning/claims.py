"""One-time claim codes: how a new scanner proves it was sent by its owner.

The owner creates a code (`ClaimService.create`) bound to their organisation, prints its QR
code (`qr_svg`, `qr_png`) and puts it on the scanner's SD card (`provisioning.bootconfig`). At
first boot the scanner sends the code over HTTPS; the server `redeem`s it once and issues the
device's credentials. Codes are

- human-friendly: 16 symbols of Crockford's base32 (no I, L, O, U), shown as
  ``XXXX-XXXX-XXXX-XXXX``, read case-insensitively with ``I``/``L`` as ``1`` and ``O`` as ``0``;
- checked: the last symbol is a Luhn mod 32 check over the other 15 (75 random bits), so a
  mistyped symbol or swapped neighbours are told apart from an unknown code without a lookup;
- stored as a SHA-256 hash only (the codes are random, so a fast hash is enough), with an
  expiry, and usable once: `ClaimStore.mark_used` must be an atomic compare-and-set.

Errors are `ClaimError` with a stable `code`: ``malformed``, ``checksum``, ``unknown``,
``expired``, ``used``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_ALIASES = {"I": "1", "L": "1", "O": "0"}
DATA_SYMBOLS = 15
GROUP = 4
DEFAULT_TTL = dt.timedelta(days=30)
#: Prefix of the QR payload, so a phone app or the scanner's camera can tell a claim code.
URI_PREFIX = "rmclaim:"


class ClaimError(ValueError):
    """A claim code that can't be redeemed; `code` is stable, the message is for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- the code itself


def _check_symbol(values: list[int]) -> int:
    """Luhn mod 32 over symbol values: the value that makes the whole code check to 0."""
    total = 0
    for i, value in enumerate(reversed(values)):
        addend = value
        if i % 2 == 0:  # doubled: the rightmost data symbol sits next to the check symbol
            addend = 2 * value
            addend = addend // 32 + addend % 32
        total += addend
    return (32 - total % 32) % 32


def generate_code() -> str:
    """A fresh claim code, grouped for reading: ``7K3M-Q9XA-T2PB-HW4C``."""
    values = [secrets.randbelow(32) for _ in range(DATA_SYMBOLS)]
    symbols = "".join(ALPHABET[v] for v in values) + ALPHABET[_check_symbol(values)]
    return "-".join(symbols[i : i + GROUP] for i in range(0, len(symbols), GROUP))


def normalize_code(text: str) -> str:
    """The canonical 16 symbols of a typed or scanned code; raises `ClaimError` when invalid."""
    raw = text.strip()
    if raw.lower().startswith(URI_PREFIX):
        raw = raw[len(URI_PREFIX) :]
    cleaned = "".join(_ALIASES.get(c, c) for c in raw.upper() if c not in " -")
    if len(cleaned) != DATA_SYMBOLS + 1:
        raise ClaimError(
            "malformed",
            f"a claim code has {DATA_SYMBOLS + 1} letters and digits (got {len(cleaned)})",
        )
    bad = sorted({c for c in cleaned if c not in _INDEX})
    if bad:
        raise ClaimError("malformed", f"a claim code can't contain {''.join(bad)!r}")
    values = [_INDEX[c] for c in cleaned]
    if _check_symbol(values[:-1]) != values[-1]:
        raise ClaimError("checksum", "this claim code has a typo: check each symbol again")
    return cleaned


def hash_code(code: str) -> str:
    """The stored form of a code: hex SHA-256 of its canonical symbols."""
    return hashlib.sha256(normalize_code(code).encode("ascii")).hexdigest()


def claim_uri(code: str) -> str:
    """The text a claim QR code carries."""
    return URI_PREFIX + normalize_code(code)


def qr_svg(code: str, scale: int = 8) -> bytes:
    """The claim code's QR code as SVG (needs `segno`, in the server extra)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(claim_uri(code), error="m").save(buf, kind="svg", scale=scale, border=4)
    return buf.getvalue()


def qr_png(code: str, scale: int = 8) -> bytes:
    """The claim code's QR code as PNG (needs `segno`, in the server extra)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(claim_uri(code), error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


# --------------------------------------------------------------------------- records, storage


@dataclass(frozen=True)
class ClaimRecord:
    """What is stored for a code: never the code itself."""

    code_hash: str
    organization_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    label: str = ""
    used_at: dt.datetime | None = None
    device_id: str | None = None


class ClaimStore(Protocol):
    """Persistence of claim records (the server implements it on its database).

    - `add` SHALL refuse a duplicate `code_hash` (raise).
    - `get` returns the record or None.
    - `mark_used` SHALL set `used_at` and `device_id` only if the record exists and is unused,
      atomically (e.g. ``UPDATE ... WHERE code_hash = :h AND used_at IS NULL``), and return
      whether it did: two scanners racing with one code get True once.
    """

    def add(self, record: ClaimRecord) -> None: ...

    def get(self, code_hash: str) -> ClaimRecord | None: ...

    def mark_used(self, code_hash: str, device_id: str, used_at: dt.datetime) -> bool: ...


class MemoryClaimStore:
    """A `ClaimStore` in memory, thread-safe: for one process and for tests of the logic."""

    def __init__(self) -> None:
        self._records: dict[str, ClaimRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: ClaimRecord) -> None:
        with self._lock:
            if record.code_hash in self._records:
                raise ValueError("a claim with this code already exists")
            self._records[record.code_hash] = record

    def get(self, code_hash: str) -> ClaimRecord | None:
        with self._lock:
            return self._records.get(code_hash)

    def mark_used(self, code_hash: str, device_id: str, used_at: dt.datetime) -> bool:
        with self._lock:
            record = self._records.get(code_hash)
            if record is None or record.used_at is not None:
                return False
            self._records[code_hash] = replace(record, used_at=used_at, device_id=device_id)
            return True


@dataclass(frozen=True)
class IssuedClaim:
    """A new code: show `code` to the owner once; `record` is what was stored."""

    code: str
    record: ClaimRecord


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ClaimService:
    """Creates and redeems claim codes over a `ClaimStore`; the clock is injectable."""

    def __init__(self, store: ClaimStore, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.store = store
        self.clock = clock

    def create(
        self, organization_id: str, ttl: dt.timedelta = DEFAULT_TTL, label: str = ""
    ) -> IssuedClaim:
        """A new single-use code for `organization_id`, valid for `ttl`."""
        if not organization_id:
            raise ValueError("a claim code must belong to an organisation")
        if ttl <= dt.timedelta(0):
            raise ValueError(f"ttl must be positive (got {ttl})")
        now = self.clock()
        code = generate_code()
        record = ClaimRecord(
            code_hash=hash_code(code),
            organization_id=organization_id,
            created_at=now,
            expires_at=now + ttl,
            label=label,
        )
        self.store.add(record)
        return IssuedClaim(code=code, record=record)

    def redeem(self, code: str, device_id: str) -> ClaimRecord:
        """Use `code` for `device_id`, once; returns the used record (its organisation)."""
        code_hash = hash_code(code)  # raises malformed/checksum before any lookup
        record = self.store.get(code_hash)
        if record is None:
            raise ClaimError("unknown", "this claim code is not known: ask the owner for a new one")
        now = self.clock()
        if record.used_at is not None:
            raise ClaimError("used", "this claim code has already been used")
        if now >= record.expires_at:
            raise ClaimError(
                "expired", f"this claim code expired at {record.expires_at.isoformat()}"
            )
        if not self.store.mark_used(code_hash, device_id, now):
            raise ClaimError("used", "this claim code has already been used")
        return replace(record, used_at=now, device_id=device_id)
