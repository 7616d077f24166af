"""Metrics of the job queue (infra/metrics.md, "database and jobs").

- `JobQueueCollector` reads the queue's depth per (kind, state) from the `jobs` table at scrape
  time; the API process exports it (any process could: it is the database's truth, so several
  exporters agree).
- `JobMetrics` counts what one worker did: finished jobs by outcome and how long they ran.
  Each worker process has its own registry (`receipts jobs` serves it on its metrics port; the
  demo adds it to the API's).
"""

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

from server.jobs.queue import depth
from server.plans.quota import QUOTA_HELD

logger = logging.getLogger(__name__)

#: Job run times: an OCR read takes seconds, a slow one a minute.
JOB_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class JobQueueCollector(Collector):
    """`rm_job_queue_depth{queue,state}`, `rm_jobs_queued{queue}`; read at most every `cache_s`."""

    def __init__(self, sessions: sessionmaker[Session], cache_s: float = 5.0) -> None:
        self.sessions = sessions
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: dict[tuple[str, str], int] | None = None
        self._cached_at = 0.0

    def _depth(self) -> dict[tuple[str, str], int] | None:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < self.cache_s:
                return self._cached
            try:
                with self.sessions() as session:
                    self._cached = depth(session)
            except SQLAlchemyError as exc:
                logger.warning("job metrics: jobs table not readable: %s", exc)
                return None
            self._cached_at = time.monotonic()
            return self._cached

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        counts = self._depth()
        if counts is None:
            return
        by_state = GaugeMetricFamily(
            "rm_job_queue_depth", "Jobs by queue and state", labels=["queue", "state"]
        )
        queued = GaugeMetricFamily(
            "rm_jobs_queued", "Jobs waiting to run (state queued)", labels=["queue"]
        )
        for (kind, state), n in sorted(counts.items()):
            by_state.add_metric([kind, state], n)
            if state == "queued":
                queued.add_metric([kind], n)
        yield by_state
        yield queued


class JobMetrics:
    """One worker's counters: `rm_jobs_total{queue,outcome}`, `rm_job_duration_seconds{queue}`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        own = registry is None
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if own:  # uploads admitted by this worker can be held over a quota: count them here
            self.registry.register(QUOTA_HELD)
        self.finished = Counter(
            "rm_jobs",
            "Job attempts finished; outcome ok, retry (failed, will run again) or failed",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "rm_job_duration_seconds",
            "Time one attempt of a job ran, whatever its outcome",
            ["queue"],
            buckets=JOB_DURATION_BUCKETS,
            registry=self.registry,
        )

    def observe(self, kind: str, outcome: str, seconds: float) -> None:
        self.finished.labels(kind, outcome).inc()
        self.duration.labels(kind).observe(seconds)
