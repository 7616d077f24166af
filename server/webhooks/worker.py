"""The delivery worker: claim due deliveries, POST them signed, record each attempt, back off.

Runs as its own process (`receipts webhooks`) or in a thread of another program (`start`/
`stop`, as the demo does). Any number of workers can run against PostgreSQL: a claim leases
rows with ``FOR UPDATE SKIP LOCKED`` (`DeliveryQueue.claim`), and a worker that dies mid-send
leaves its lease to expire, so the delivery is sent again (receivers dedupe on the event id).
On SQLite run one worker (the claim is still atomic, but SQLite serialises every writer).

Retry policy: an attempt succeeds on any 2xx answer (redirects are not followed). Otherwise the
delivery waits ``backoff_min_s * 2**(attempt-1)``, capped at ``backoff_max_s``, varied by
±``jitter``, and is marked failed after ``max_attempts`` attempts (defaults: 1 min doubling to
12 h, 12 attempts: about two days).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.db.base import utcnow
from server.webhooks.metrics import WebhookMetrics
from server.webhooks.models import FAILED, PENDING
from server.webhooks.repository import Claimed, DeliveryQueue
from server.webhooks.settings import WebhookSettings
from server.webhooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from server.webhooks.urls import UrlRefused, default_port, resolve_public

logger = logging.getLogger(__name__)

USER_AGENT = "ReceiptManager-Webhooks/1"
ATTEMPT_HEADER = "Receipts-Delivery-Attempt"
_ERROR_LIMIT = 500


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    duration_s: float


def backoff_delay(attempt: int, settings: WebhookSettings, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    base = min(settings.backoff_max_s, settings.backoff_min_s * 2 ** min(attempt - 1, 60))
    varied = base * (1 + rng.uniform(-settings.jitter, settings.jitter))
    return float(min(max(varied, 0.0), settings.backoff_max_s))


class WebhookWorker:
    """Sends due deliveries; `run_once()` for one round, `start()`/`stop()` or `run()` to loop."""

    def __init__(
        self,
        settings: WebhookSettings,
        sessions: sessionmaker[Session],
        *,
        allow_private: bool,
        metrics: WebhookMetrics | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.allow_private = allow_private
        self.metrics = metrics or WebhookMetrics()
        self.clock = clock
        self.rng = rng or random.Random()
        timeout = httpx.Timeout(settings.timeout_s)
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_connections=settings.concurrency * 2),
        )
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="webhook-send")
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Loop in a background thread until `stop()`; returns at once."""
        if self._thread is not None:
            raise RuntimeError("this webhook worker is already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the round in hand, then release the HTTP client."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def request_stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler)."""
        self._stopping.set()

    def run(self) -> None:
        """Loop in this thread until `request_stop()`."""
        try:
            self._loop()
        finally:
            self.close()

    def _loop(self) -> None:
        delay = self.settings.poll_interval_s
        while not self._stopping.is_set():
            try:
                sent = self.run_once()
                delay = self.settings.poll_interval_s
            except SQLAlchemyError as exc:
                logger.warning("webhook deliveries not read (%s); retrying in %.0f s", exc, delay)
                sent = 0
                delay = min(delay * 2, 60.0)
            if not sent:
                self._stopping.wait(delay)

    # ------------------------------------------------------------------ one round

    def run_once(self) -> int:
        """Claim up to `concurrency` due deliveries, send them in parallel, record the results;
        returns how many were attempted."""
        now = self.clock()
        lease = now + dt.timedelta(seconds=self.settings.lease_s)
        with self.sessions.begin() as session:
            claimed = DeliveryQueue(session).claim(now, lease, self.settings.concurrency)
        if not claimed:
            return 0
        results = list(self._pool.map(self._attempt, claimed))
        for item, result in zip(claimed, results, strict=True):
            self._record(item, result)
        return len(claimed)

    def _record(self, item: Claimed, result: AttemptResult) -> None:
        ok = (
            result.error is None
            and result.status_code is not None
            and 200 <= result.status_code < 300
        )
        now = self.clock()
        next_at = None
        if not ok and item.attempt < self.settings.max_attempts:
            delay = backoff_delay(item.attempt, self.settings, self.rng)
            next_at = now + dt.timedelta(seconds=delay)
        with self.sessions.begin() as session:
            state = DeliveryQueue(session).record(
                item,
                status_code=result.status_code,
                error=result.error,
                duration_ms=round(result.duration_s * 1000),
                next_attempt_at=next_at,
                now=now,
            )
        outcome = "delivered" if ok else ("retrying" if state == PENDING else "failed")
        self.metrics.attempts.labels(outcome).inc()
        self.metrics.duration.observe(result.duration_s)
        what = f"status {result.status_code}" if result.error is None else result.error
        if ok:
            logger.info(
                "webhook %s %s delivered to %s (attempt %d, %.0f ms)",
                item.event_type,
                item.event_id,
                _origin(item.url),
                item.attempt,
                result.duration_s * 1000,
            )
        elif state == FAILED:
            logger.warning(
                "webhook %s %s to %s failed for good after %d attempts: %s",
                item.event_type,
                item.event_id,
                _origin(item.url),
                item.attempt,
                what,
            )
        else:
            logger.info(
                "webhook %s %s to %s: attempt %d failed (%s); next at %s",
                item.event_type,
                item.event_id,
                _origin(item.url),
                item.attempt,
                what,
                next_at.isoformat() if next_at else "-",
            )

    def _attempt(self, item: Claimed) -> AttemptResult:
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: str(item.event_id),
            EVENT_TYPE_HEADER: item.event_type,
            ATTEMPT_HEADER: str(item.attempt),
            SIGNATURE_HEADER: sign(item.secret, body),
        }
        started = time.perf_counter()
        try:
            url, extensions = self._target(item.url, headers)
            request = self._client.build_request(
                "POST", url, content=body, headers=headers, extensions=extensions
            )
            response = self._client.send(request, stream=True)
            response.close()  # the answer's body is not read: only its status counts
            return AttemptResult(response.status_code, None, time.perf_counter() - started)
        except UrlRefused as exc:
            error = f"refused: {exc.message}"
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.settings.timeout_s:g} s ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one bad delivery must not sink the round
            logger.exception("webhook %s to %s: unexpected error", item.event_id, _origin(item.url))
            error = f"{type(exc).__name__}: {exc}"
        return AttemptResult(None, error[:_ERROR_LIMIT], time.perf_counter() - started)

    def _target(self, url: str, headers: dict[str, str]) -> tuple[str, dict[str, object]]:
        """The URL to connect to: as registered, or (private addresses refused) pinned to the
        public address just checked, with the name kept for Host and TLS (no DNS rebinding)."""
        if self.allow_private:
            return url, {}
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = default_port(parts)
        address = resolve_public(host, port)[0]
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        headers["Host"] = parts.netloc
        extensions: dict[str, object] = {}
        if parts.scheme.lower() == "https":
            extensions["sni_hostname"] = host
        return parts._replace(netloc=netloc).geturl(), extensions


def _origin(url: str) -> str:
    """Scheme, host and port of a URL (what logs show: a path may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
