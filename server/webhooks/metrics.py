"""Webhook metrics (names in infra/metrics.md): attempts by outcome and their duration (each
delivery worker), the backlog of pending deliveries (the API process, read at scrape time)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.webhooks.repository import DeliveryQueue

logger = logging.getLogger(__name__)

#: Outcomes of one attempt: delivered (2xx), retrying (failed, will retry), failed (gave up).
OUTCOMES = ("delivered", "retrying", "failed")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WebhookMetrics:
    """A delivery worker's counters, registered on `registry` (its own or the host process's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "rm_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.attempts.labels(outcome)
        self.duration = Histogram(
            "rm_webhook_attempt_duration_seconds",
            "Time of one webhook HTTP attempt, errors and timeouts included",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )


class WebhookBacklogCollector(Collector):
    """`rm_webhook_deliveries_pending`: deliveries waiting, queried at most once per `cache_s`."""

    def __init__(self, sessions: sessionmaker[Session], cache_s: float = 5.0) -> None:
        self.sessions = sessions
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._value: int | None = None
        self._at = 0.0

    def describe(self) -> Iterable[Metric]:
        return ()

    def _pending(self) -> int | None:
        with self._lock:
            if self._value is not None and time.monotonic() - self._at < self.cache_s:
                return self._value
            try:
                with self.sessions() as session:
                    self._value = DeliveryQueue(session).pending()
            except SQLAlchemyError as exc:
                logger.warning("webhook metrics: deliveries not readable: %s", exc)
                return None
            self._at = time.monotonic()
            return self._value

    def collect(self) -> Iterator[Metric]:
        pending = self._pending()
        if pending is None:
            return
        gauge = GaugeMetricFamily(
            "rm_webhook_deliveries_pending", "Webhook deliveries waiting to be sent"
        )
        gauge.add_metric([], pending)
        yield gauge
