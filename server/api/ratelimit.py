"""Rate limits of API credentials: one token bucket per API key (and per operator token, if set).

A bucket holds at most `burst` requests and refills at `per_minute / 60` a second; a request
takes one. An empty bucket answers 429 ``rate_limited`` with ``Retry-After`` (seconds until one
request is allowed). Every answer to a limited credential carries ``RateLimit-Limit`` (the
burst), ``RateLimit-Remaining`` (requests left now) and ``RateLimit-Reset`` (seconds until the
bucket is full again), after the IETF RateLimit header fields draft.

Settings (`RM_RATE_LIMITS__*`): ``ENABLED``, ``API_KEYS__PER_MINUTE`` / ``API_KEYS__BURST``
(default 600 / 100) and ``OPERATOR_TOKENS__PER_MINUTE`` / ``__BURST`` (unset: operator-issued
tokens, which deploy checks, monitoring, billing and tests use, are not limited). There are no
per-plan limits: only Enterprise organisations have API keys.

**One process, by choice.** Buckets live in this process's memory: exact, no I/O per request,
and right for one API instance. With N replicas behind a load balancer each replica has its own
buckets, so a credential gets up to N times its limit (less with sticky routing by credential).
A multi-instance deployment that needs the exact limit moves the bucket into shared storage
with an atomic update: Redis (a Lua script doing this same refill-and-take on a hash per
credential, with a TTL) or PostgreSQL (``UPDATE ... SET tokens = least(burst, tokens + elapsed
* rate) - 1 ... RETURNING``, one row per credential: a write per request). `RateLimiter` is the
seam: replace it on ``app.state.rate_limiter`` with one that talks to the shared store.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

#: Buckets kept before full, idle ones are forgotten (a full bucket is the same as none).
MAX_BUCKETS = 100_000


class Bucket(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: float = Field(gt=0, description="Requests a minute, sustained.")
    burst: int = Field(ge=1, description="Requests allowed at once (the bucket's size).")


class RateLimitSettings(BaseModel):
    """Token buckets per API credential (`server.api.ratelimit`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="false: no limits at all.")
    api_keys: Bucket = Field(
        default=Bucket(per_minute=600, burst=100), description="Each API key's bucket."
    )
    operator_tokens: Bucket | None = Field(
        default=None, description="Each operator-issued token's bucket; unset: not limited."
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the bucket is full
    retry_after_s: int  # until one request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class RateLimiter:
    """In-process token buckets keyed by credential; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: Hashable, bucket: Bucket) -> Decision:
        rate = bucket.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (float(bucket.burst), now))
            tokens = min(float(bucket.burst), tokens + (now - at) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._forget_full(now, rate, bucket.burst)
            self._buckets[key] = (tokens, now)
        return Decision(
            allowed=allowed,
            limit=bucket.burst,
            remaining=int(tokens),
            reset_s=math.ceil((bucket.burst - tokens) / rate),
            retry_after_s=0 if allowed else max(1, math.ceil((1.0 - tokens) / rate)),
        )

    def _forget_full(self, now: float, rate: float, burst: int) -> None:
        for k, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate >= burst:
                del self._buckets[k]
