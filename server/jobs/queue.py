"""The job queue's database operations: enqueue, claim with a lease, finish, fail, renew.

States: ``queued`` -> ``running`` (claimed: `attempts` + 1, `locked_by`, `locked_until`) ->
``done``, or back to ``queued`` with `run_after` pushed out (a failed attempt, backoff doubling),
or ``failed`` (attempts used up, or a permanent error) with the reason in `error`.

- Claiming takes the oldest due job. On PostgreSQL the candidate row is read with
  ``FOR UPDATE SKIP LOCKED``, so concurrent workers never wait on nor take the same row; on
  SQLite (one worker) the same code runs without row locks. Either way the state change is a
  compare-and-set on (state, attempts), so a job is only ever claimed by one worker at a time.
- A ``running`` job whose lease ran out (its worker crashed, hung or lost the database) is
  claimable again; if it had no attempts left it is failed with that reason instead.
- A worker writes a job's result only while it still holds the lease: `finish` locks the job
  row, checks `locked_by`, runs the handler's writes and marks it done in ONE transaction.

Enqueueing takes the caller's session (the request that asks for the work owns the
transaction); the worker's operations each run their own short transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.db.base import utcnow
from server.jobs.models import JOB_STATES, Job

#: Longest pause between two attempts of a job.
MAX_BACKOFF_S = 3600.0
#: Longest error text kept on a job.
MAX_ERROR_CHARS = 2000

Clock = Callable[[], dt.datetime]


class LeaseLostError(RuntimeError):
    """The job is no longer this worker's (its lease ran out and another worker took it)."""


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds the lease of."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    organization_id: uuid.UUID | None
    attempt: int  # 1 for the first run
    max_attempts: int
    worker_id: str


@dataclass(frozen=True)
class Outcome:
    """What `fail` did: `final` when the job is now failed for good."""

    final: bool
    retry_at: dt.datetime | None


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    organization_id: uuid.UUID | None = None,
    max_attempts: int = 3,
    run_after: dt.datetime | None = None,
) -> Job:
    """Add a job in the caller's transaction (it runs once that commits); flushes."""
    now = utcnow()
    job = Job(
        kind=kind,
        payload=payload,
        organization_id=organization_id,
        state="queued",
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after or now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def backoff(attempt: int, base_s: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): base, 2 base, 4 base."""
    return float(min(base_s * 2 ** max(attempt - 1, 0), MAX_BACKOFF_S))


def _due(kinds: Collection[str], now: dt.datetime) -> Any:
    return and_(
        Job.kind.in_(list(kinds)),
        or_(
            and_(Job.state == "queued", Job.run_after <= now),
            and_(Job.state == "running", Job.locked_until < now),
        ),
    )


def claim(
    sessions: sessionmaker[Session],
    worker_id: str,
    kinds: Collection[str],
    lease_s: float,
    clock: Clock = utcnow,
) -> ClaimedJob | None:
    """Take the oldest due job of `kinds` for `lease_s` seconds, or None if there is none.

    A job found with an expired lease and no attempts left is failed (with that reason) and
    the next one is looked at.
    """
    while True:
        now = clock()
        with sessions.begin() as session:
            row = session.execute(
                select(
                    Job.id,
                    Job.kind,
                    Job.payload,
                    Job.organization_id,
                    Job.state,
                    Job.attempts,
                    Job.max_attempts,
                    Job.locked_by,
                )
                .where(_due(kinds, now))
                .order_by(Job.run_after, Job.created_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            cas = (Job.id == row.id, Job.state == row.state, Job.attempts == row.attempts)
            if row.state == "running" and row.attempts >= row.max_attempts:
                session.execute(
                    update(Job)
                    .where(*cas)
                    .values(
                        state="failed",
                        error=f"attempt {row.attempts} of {row.max_attempts} never finished: "
                        f"the lease of worker {row.locked_by} ran out (it stopped or hung)",
                        locked_by=None,
                        locked_until=None,
                        finished_at=now,
                        updated_at=now,
                    )
                )
                continue
            taken = session.execute(
                update(Job)
                .where(*cas)
                .values(
                    state="running",
                    attempts=row.attempts + 1,
                    locked_by=worker_id,
                    locked_until=now + dt.timedelta(seconds=lease_s),
                    started_at=now,
                    updated_at=now,
                )
            )
            if getattr(taken, "rowcount", 0) != 1:
                return None  # another worker was quicker (SQLite has no row locks)
            return ClaimedJob(
                id=row.id,
                kind=row.kind,
                payload=dict(row.payload),
                organization_id=row.organization_id,
                attempt=row.attempts + 1,
                max_attempts=row.max_attempts,
                worker_id=worker_id,
            )


def _held(job: ClaimedJob) -> tuple[Any, ...]:
    return (Job.id == job.id, Job.state == "running", Job.locked_by == job.worker_id)


def finish(
    sessions: sessionmaker[Session],
    job: ClaimedJob,
    write: Callable[[Session], None],
    clock: Clock = utcnow,
) -> None:
    """Run `write` and mark the job done in one transaction, if the lease is still ours.

    Raises `LeaseLostError` (and writes nothing) if another worker has taken the job over.
    """
    with sessions.begin() as session:
        held = session.execute(
            select(Job.id).where(*_held(job)).with_for_update()
        ).scalar_one_or_none()
        if held is None:
            raise LeaseLostError(f"job {job.id} is no longer held by {job.worker_id}")
        write(session)
        now = clock()
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(
                state="done",
                error=None,
                locked_by=None,
                locked_until=None,
                finished_at=now,
                updated_at=now,
            )
        )


def fail(
    sessions: sessionmaker[Session],
    job: ClaimedJob,
    error: str,
    *,
    permanent: bool,
    backoff_s: float,
    clock: Clock = utcnow,
) -> Outcome | None:
    """Record a failed attempt: queued again after a backoff, or failed for good when the
    attempts are used up or the error is `permanent`. None if the lease was lost meanwhile."""
    now = clock()
    final = permanent or job.attempt >= job.max_attempts
    retry_at = None if final else now + dt.timedelta(seconds=backoff(job.attempt, backoff_s))
    values: dict[str, Any] = {
        "error": error[:MAX_ERROR_CHARS],
        "locked_by": None,
        "locked_until": None,
        "updated_at": now,
    }
    if final:
        values.update(state="failed", finished_at=now)
    else:
        values.update(state="queued", run_after=retry_at)
    with sessions.begin() as session:
        done = session.execute(update(Job).where(*_held(job)).values(**values))
        if getattr(done, "rowcount", 0) != 1:
            return None
    return Outcome(final, retry_at)


def renew(
    sessions: sessionmaker[Session], job: ClaimedJob, lease_s: float, clock: Clock = utcnow
) -> bool:
    """Extend the lease of a job still held; False if it was lost."""
    now = clock()
    with sessions.begin() as session:
        done = session.execute(
            update(Job)
            .where(*_held(job))
            .values(locked_until=now + dt.timedelta(seconds=lease_s), updated_at=now)
        )
        return getattr(done, "rowcount", 0) == 1


def depth(session: Session) -> dict[tuple[str, str], int]:
    """Jobs per (kind, state); every state of a known kind is present (zeros included)."""
    counts: dict[tuple[str, str], int] = {}
    rows = session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
    for kind, state, n in rows:
        for s in JOB_STATES:
            counts.setdefault((kind, s), 0)
        counts[(kind, state)] = int(n)
    return counts
