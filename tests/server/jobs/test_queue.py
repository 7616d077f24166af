"""The job queue on real databases: claiming, leases, retries and failure, and two workers on
PostgreSQL racing for the same jobs."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.jobs.models import Job
from server.jobs.queue import ClaimedJob, LeaseLostError, claim, enqueue, finish
from server.jobs.settings import JobsSettings
from server.jobs.worker import JobWorker, PermanentJobError, Write
from server.observability.jobs import JobMetrics, JobQueueCollector
from tests.server.conftest import Db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, at: dt.datetime = T0) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


class Recorder:
    """A handler that records who ran which job and marks its run in the database."""

    kind = "probe"

    def __init__(self, pause_s: float = 0.0, error: Exception | None = None) -> None:
        self.pause_s = pause_s
        self.error = error
        self.runs: list[tuple[uuid.UUID, str]] = []
        self._lock = threading.Lock()

    def perform(self, job: ClaimedJob) -> Write:
        with self._lock:
            self.runs.append((job.id, job.worker_id))
        time.sleep(self.pause_s)
        if self.error is not None:
            raise self.error

        def write(session: Session) -> None:
            row = session.get(Job, job.id)
            assert row is not None
            row.payload = {**row.payload, "ran_by": job.worker_id}

        return write


def add_jobs(
    db: Db, n: int, max_attempts: int = 3, at: dt.datetime | None = None
) -> list[uuid.UUID]:
    with db.sessions.begin() as session:
        return [
            enqueue(session, "probe", {"n": i}, max_attempts=max_attempts, run_after=at).id
            for i in range(n)
        ]


def job(db: Db, job_id: uuid.UUID) -> Job:
    with db.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


@pytest.fixture
def pg(pg_url: str) -> Iterator[Db]:
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    yield Db(pg_url, engine, session_factory(engine))
    engine.dispose()


def test_two_workers_on_postgres_never_run_the_same_job(pg: Db):
    ids = add_jobs(pg, 16)
    handler = Recorder(pause_s=0.05)
    settings = JobsSettings(poll_interval_s=0.05)
    workers = [JobWorker(pg.sessions, [handler], settings, worker_id=f"w{i}") for i in (1, 2)]
    start = threading.Barrier(2)

    def drain(worker: JobWorker) -> None:
        start.wait()
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    runs = Counter(job_id for job_id, _ in handler.runs)
    assert sorted(runs) == sorted(ids)
    assert set(runs.values()) == {1}, "a job ran twice"
    assert {w for _, w in handler.runs} == {"w1", "w2"}  # both took a share
    for job_id in ids:
        row = job(pg, job_id)
        assert (row.state, row.attempts, row.locked_by) == ("done", 1, None)
        assert row.payload["ran_by"] in {"w1", "w2"}


def test_a_claimed_row_is_skipped_not_waited_for_on_postgres(pg: Db):
    first, second = add_jobs(pg, 2)
    # Another transaction holds the first job's row lock (a worker in the middle of claiming).
    with pg.sessions.begin() as locker:
        locker.execute(select(Job.id).where(Job.id == first).with_for_update())
        started = time.monotonic()
        got = claim(pg.sessions, "w2", ["probe"], lease_s=60)
        assert time.monotonic() - started < 5
        assert got is not None and got.id == second
    got = claim(pg.sessions, "w3", ["probe"], lease_s=60)
    assert got is not None and got.id == first
    assert claim(pg.sessions, "w4", ["probe"], lease_s=60) is None


def test_an_expired_lease_is_taken_over_and_the_late_worker_writes_nothing(db: Db):
    clock = Clock()
    (job_id,) = add_jobs(db, 1, at=T0)
    crashed = claim(db.sessions, "crashed", ["probe"], lease_s=30, clock=clock)
    assert crashed is not None and crashed.attempt == 1

    clock.advance(20)  # lease still running: nobody else may take it
    assert claim(db.sessions, "other", ["probe"], lease_s=30, clock=clock) is None

    clock.advance(11)
    handler = Recorder()
    worker = JobWorker(
        db.sessions, [handler], JobsSettings(lease_s=30), worker_id="other", clock=clock
    )
    assert worker.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts, row.payload["ran_by"]) == ("done", 2, "other")

    # the first worker comes back to life: its result is refused, the job stays done
    with pytest.raises(LeaseLostError):
        finish(db.sessions, crashed, lambda s: None, clock=clock)
    assert job(db, job_id).state == "done"


def test_a_failing_job_is_retried_with_backoff_then_failed_with_its_reason(db: Db):
    clock = Clock()
    (job_id,) = add_jobs(db, 1, max_attempts=3, at=T0)
    handler = Recorder(error=RuntimeError("the OCR engine crashed"))
    metrics = JobMetrics()
    settings = JobsSettings(retry_backoff_s=10)
    worker = JobWorker(
        db.sessions, [handler], settings, metrics=metrics, worker_id="w", clock=clock
    )

    assert worker.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts) == ("queued", 1)
    assert row.run_after == T0 + dt.timedelta(seconds=10)
    assert "the OCR engine crashed" in (row.error or "")
    assert not worker.run_once()  # not due yet
    clock.advance(10)
    assert worker.run_once()
    assert job(db, job_id).run_after == clock() + dt.timedelta(seconds=20)  # doubled
    clock.advance(20)
    assert worker.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.error == "RuntimeError: the OCR engine crashed"
    assert row.finished_at == clock()
    clock.advance(3600)
    assert not worker.run_once()  # failed for good
    assert len(handler.runs) == 3
    sample = metrics.registry.get_sample_value
    assert sample("rm_jobs_total", {"queue": "probe", "outcome": "retry"}) == 2
    assert sample("rm_jobs_total", {"queue": "probe", "outcome": "failed"}) == 1
    assert sample("rm_job_duration_seconds_count", {"queue": "probe"}) == 3


def test_a_permanent_error_fails_at_once(db: Db):
    (job_id,) = add_jobs(db, 1, max_attempts=5)
    handler = Recorder(error=PermanentJobError("the photo is gone from the image store"))
    worker = JobWorker(db.sessions, [handler], JobsSettings(), worker_id="w")
    assert worker.run_once()
    row = job(db, job_id)
    assert (row.state, row.attempts, row.error) == (
        "failed",
        1,
        "the photo is gone from the image store",
    )


def test_a_job_whose_last_lease_ran_out_is_failed_with_that_reason(db: Db):
    clock = Clock()
    (job_id,) = add_jobs(db, 1, max_attempts=1, at=T0)
    assert claim(db.sessions, "crashed", ["probe"], lease_s=30, clock=clock) is not None
    clock.advance(31)
    assert claim(db.sessions, "other", ["probe"], lease_s=30, clock=clock) is None
    row = job(db, job_id)
    assert row.state == "failed"
    assert "lease of worker crashed ran out" in (row.error or "")


def test_queue_depth_by_state_is_exported(db: Db):
    add_jobs(db, 3)
    handler = Recorder()
    JobWorker(db.sessions, [handler], JobsSettings(), worker_id="w").run_once()
    collector = JobQueueCollector(db.sessions, cache_s=0)
    samples = {
        (m.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector.collect()
        for s in m.samples
    }
    assert samples[("rm_job_queue_depth", (("queue", "probe"), ("state", "queued")))] == 2
    assert samples[("rm_job_queue_depth", (("queue", "probe"), ("state", "done")))] == 1
    assert samples[("rm_job_queue_depth", (("queue", "probe"), ("state", "failed")))] == 0
    assert samples[("rm_jobs_queued", (("queue", "probe"),))] == 2


def test_a_job_worker_exports_the_quota_holds_of_the_uploads_it_admits():
    from prometheus_client import generate_latest

    assert b"rm_quota_held_receipts_total" in generate_latest(JobMetrics().registry)
