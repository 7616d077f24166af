"""The job worker: claim a due job, run its handler, record the outcome; repeat until stopped.

Runs as its own process (`receipts jobs`) or as a thread of another program (`start`/`stop`,
as `receipts demo` does). Any number of workers may share a PostgreSQL database; on SQLite run
one. While a handler runs, a heartbeat thread renews the job's lease, so only a worker that
stopped (crash, kill, lost database) lets its job be taken over when the lease runs out.

Handler contract (`JobHandler`):

- `kind` SHALL name the jobs it runs; one handler per kind.
- `perform(job)` SHALL do the slow work (reading a photo) outside any transaction of the
  queue's and return a `write(session)` callable; the worker runs `write` in the transaction
  that marks the job done, so the result and the job's state commit together or not at all.
- Both MAY run again for the same job (a retry, or a worker that lost its lease), so `write`
  SHALL be idempotent (e.g. keyed inserts that skip what exists).
- Raise `PermanentJobError` for a failure no retry can fix (its input is gone or invalid);
  any other exception counts as one failed attempt and the job is retried with backoff until
  its attempts are used up, then failed with the last reason.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.db.base import utcnow
from server.jobs.queue import ClaimedJob, Clock, LeaseLostError, claim, fail, finish, renew
from server.jobs.settings import JobsSettings
from server.observability.jobs import JobMetrics

logger = logging.getLogger(__name__)

Write = Callable[[Session], None]


class PermanentJobError(Exception):
    """A failure that retrying cannot fix; the job is failed at once with this message."""


class JobHandler(Protocol):
    """Runs the jobs of one `kind`; see the module docstring for the contract."""

    kind: str

    def perform(self, job: ClaimedJob) -> Write: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class JobWorker:
    """Claims and runs jobs of its handlers' kinds. `run_once` for tests, `run` for a process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: Sequence[JobHandler],
        settings: JobsSettings,
        *,
        metrics: JobMetrics | None = None,
        worker_id: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.sessions = sessions
        self.handlers = {h.kind: h for h in handlers}
        if len(self.handlers) != len(handlers):
            raise ValueError("two job handlers for the same kind")
        self.settings = settings
        self.metrics = metrics or JobMetrics()
        self.worker_id = worker_id or settings.worker_id or default_worker_id()
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Claim one due job and run it; False if none was due."""
        job = claim(self.sessions, self.worker_id, self.handlers, self.settings.lease_s, self.clock)
        if job is None:
            return False
        self._run(job)
        return True

    def _run(self, job: ClaimedJob) -> None:
        handler = self.handlers[job.kind]
        started = time.perf_counter()
        logger.info(
            "job %s (%s) attempt %d/%d on %s",
            job.id,
            job.kind,
            job.attempt,
            job.max_attempts,
            self.worker_id,
        )
        with _Heartbeat(self.sessions, job, self.settings.lease_s, self.clock):
            try:
                write = handler.perform(job)
                finish(self.sessions, job, write, self.clock)
            except LeaseLostError:
                logger.warning("job %s: lease lost to another worker; result dropped", job.id)
                self.metrics.observe(job.kind, "lost", time.perf_counter() - started)
                return
            except Exception as exc:
                self._failed(job, exc, time.perf_counter() - started)
                return
        seconds = time.perf_counter() - started
        self.metrics.observe(job.kind, "ok", seconds)
        logger.info("job %s (%s) done in %.2f s", job.id, job.kind, seconds)

    def _failed(self, job: ClaimedJob, exc: Exception, seconds: float) -> None:
        permanent = isinstance(exc, PermanentJobError)
        reason = str(exc) or type(exc).__name__
        if not permanent:
            reason = f"{type(exc).__name__}: {reason}"
        try:
            outcome = fail(
                self.sessions,
                job,
                reason,
                permanent=permanent,
                backoff_s=self.settings.retry_backoff_s,
                clock=self.clock,
            )
        except SQLAlchemyError:
            logger.exception("job %s: could not record its failure; the lease will expire", job.id)
            return
        if outcome is None:
            logger.warning("job %s failed after its lease was lost: %s", job.id, reason)
            return
        self.metrics.observe(job.kind, "failed" if outcome.final else "retry", seconds)
        if outcome.final:
            logger.error(
                "job %s (%s) failed for good after attempt %d: %s",
                job.id,
                job.kind,
                job.attempt,
                reason,
                exc_info=not permanent,
            )
        else:
            logger.warning(
                "job %s (%s) attempt %d failed, retry at %s: %s",
                job.id,
                job.kind,
                job.attempt,
                outcome.retry_at,
                reason,
            )

    def run(self) -> None:
        """Work until `request_stop`; database errors pause the loop, they never end it."""
        logger.info(
            "job worker %s: kinds %s, lease %.0f s",
            self.worker_id,
            ", ".join(sorted(self.handlers)),
            self.settings.lease_s,
        )
        while not self._stopping.is_set():
            try:
                ran = self.run_once()
            except SQLAlchemyError as exc:
                logger.warning("job worker %s: database error, pausing: %s", self.worker_id, exc)
                ran = False
            if not ran:
                self._stopping.wait(self.settings.poll_interval_s)
        logger.info("job worker %s stopped", self.worker_id)

    def request_stop(self) -> None:
        """Finish the job in hand, then return from `run`."""
        self._stopping.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"jobs-{self.worker_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class _Heartbeat:
    """Renews a job's lease every third of it while the handler runs."""

    def __init__(
        self, sessions: sessionmaker[Session], job: ClaimedJob, lease_s: float, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.job = job
        self.lease_s = lease_s
        self.clock = clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job.id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(5)

    def _beat(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            try:
                if not renew(self.sessions, self.job, self.lease_s, self.clock):
                    logger.warning("job %s: lease lost, not renewed", self.job.id)
                    return
            except SQLAlchemyError as exc:
                logger.warning("job %s: lease not renewed: %s", self.job.id, exc)
