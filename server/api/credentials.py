"""A short-lived, per-process cache of resolved bearer credentials (`server.api.auth`).

Why: resolving a credential is a transaction of its own (a pooled connection, BEGIN, a join of
`api_tokens` and `organizations`, COMMIT) on every API request; at a few hundred requests a
second that was a third of the database work of a receipt list. A client polls with the same
credential, so the answer is nearly always the one given a moment ago.

What is cached: only a live `Principal` (never a refusal: a new key works at once), keyed by
the secret's SHA-256, with the credential's own `expires_at`, which is checked on every hit (an
expired key is refused to the second).

How stale it can be, the bound operators rely on:
- In this process, never after a change made through it: every request that is not a read
  (any method but GET/HEAD/OPTIONS, API or dashboard: a revoked key, a changed plan, a
  changed role) empties the cache when it has finished, i.e. after its commit, and a lookup
  that raced with it is not stored (`generation`).
- Elsewhere (another API process or replica, the CLI's ``receipts admin`` commands, a plan
  changed by billing in SQL): a revoked key, a lowered plan or a changed role takes effect
  within ``RM_API__CREDENTIAL_CACHE_S`` seconds (default 10). ``0`` turns the cache off.
`last_used_at` is noted when the credential is resolved from the database, so it lags real use
by at most the cache's time-to-live plus its one-minute granularity.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.api.auth import Principal

#: Entries kept at most; when full the cache starts over (a cheap, rare reset).
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: dt.datetime | None  # the credential's own expiry
    fresh_until: float  # monotonic seconds


class CredentialCache:
    """Principals of bearer secrets (by hash) for `ttl_s` seconds; thread-safe."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.generation = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def get(self, token_hash: str, now: dt.datetime) -> Principal | None:
        """The cached principal, unless absent, older than the TTL or past its expiry."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry.fresh_until <= self._clock() or (
            entry.expires_at is not None and entry.expires_at <= now
        ):
            self._entries.pop(token_hash, None)
            return None
        return entry.principal

    def put(
        self,
        token_hash: str,
        principal: Principal,
        expires_at: dt.datetime | None,
        generation: int,
    ) -> None:
        """Keep `principal`, unless a write finished since the lookup began (`generation`, read
        before the lookup): what it read may be what that write changed."""
        if not self.enabled:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = _Entry(principal, expires_at, self._clock() + self.ttl_s)

    def invalidate(self) -> None:
        """Forget everything (after a write: it may have revoked a key or changed a plan)."""
        with self._lock:
            self.generation += 1
            self._entries.clear()
