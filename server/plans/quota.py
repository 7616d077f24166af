"""Monthly receipt quotas: receipts over the quota are stored and *held*, never thrown away.

Contract:
- `hold_over_quota(session, rows)` is called by `server.receipts.intake.admit_receipts` for every
  new receipt, whatever brought it (MQTT ingest, phone upload). For each organisation on a plan
  with a monthly limit it first releases receipts held earlier (they come first: capture order),
  then admits the new rows, earliest capture first, while the month has room and marks the rest
  held (`held_reason = "monthly_quota"`, `held_at`). Nothing is dropped.
- A receipt counts against the month (UTC) in which it was admitted: its `received_at`, or its
  `released_at` when it was held first.
- `release_held(session, org_id)` releases held receipts in capture order, as many as the month
  has room for (all of them on an unlimited plan). It runs when the plan changes
  (`change_plan`), before new receipts are admitted, and periodically through `release_due`
  (the ingest worker calls it every `RM_PLANS__RELEASE_INTERVAL_S`; `receipts admin
  release-held` does it once), so a new month releases what the last one held.
- Quota decisions of one organisation are serialised by locking its row (PostgreSQL `FOR
  UPDATE`), so several ingest workers never admit past the limit together. Only organisations
  on a limited plan take the lock.
- Held receipts are left out of analytics and exports by default, and shown as held (with
  `held_message`) in the dashboard and the API.

Metric: `rm_quota_held_receipts_total{plan}` counts receipts held, once their transaction
commits (a rolled-back batch that is retried is not counted twice).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

from server.accounts.audit import Actor, record_change
from server.db.base import utcnow
from server.plans.catalog import Plan, plan_of
from server.plans.repository import PlanRepository
from server.webhooks.outbox import receipts_released

logger = logging.getLogger(__name__)

#: `receipts.held_reason` of a receipt over its organisation's monthly quota.
MONTHLY_QUOTA = "monthly_quota"

#: Process-wide (one per process, like every collector here); the API's and each ingest
#: worker's registry export it (`server.observability.metrics`).
QUOTA_HELD = Counter(
    "rm_quota_held_receipts",
    "Receipts stored but held because their organisation's monthly quota was reached",
    ["plan"],
    registry=None,
)

_PENDING = "rm_quota_held_pending"
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of `now`'s month, UTC."""
    now = now.astimezone(dt.UTC)
    return dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)


def next_month_start(now: dt.datetime) -> dt.datetime:
    start = month_start(now)
    return (start + dt.timedelta(days=32)).replace(day=1)


def held_message(plan: Plan, now: dt.datetime | None = None) -> str:
    """What a person is told about a held receipt of an organisation on `plan`."""
    limit = plan.spec.monthly_receipts
    if limit is None:
        return (
            f"Held over an earlier monthly limit; the {plan.label} plan has none, so it is "
            "released within minutes"
        )
    day = next_month_start(now or utcnow())
    return (
        f"Monthly limit of {limit} receipts on the {plan.label} plan reached; upgrade or wait "
        f"until {day.day} {_MONTHS[day.month - 1]} to release"
    )


def held_note(session: Session, organization_id: uuid.UUID) -> str:
    """`held_message` for the organisation's current plan."""
    plans = PlanRepository(session).plans([organization_id])
    return held_message(plan_of(plans.get(organization_id, "")))


def usage(session: Session, organization_id: uuid.UUID, now: dt.datetime | None = None) -> int:
    """Receipts counted against the organisation's quota this month."""
    return PlanRepository(session).counted_since(organization_id, month_start(now or utcnow()))


def hold_over_quota(
    session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """`rows` (new `receipts` rows, column -> value) with `held_reason`/`held_at` set on those
    over their organisation's monthly quota; in the caller's transaction."""
    now = now or utcnow()
    out = [{**row, "held_reason": None, "held_at": None} for row in rows]
    if not out:
        return out
    repo = PlanRepository(session)
    by_org: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in out:
        by_org.setdefault(row["organization_id"], []).append(row)
    plans = repo.plans(by_org)
    limited = sorted(o for o in by_org if plan_of(plans.get(o, "")).spec.monthly_receipts)
    if not limited:
        return out
    stored = repo.stored_ids(r["id"] for o in limited for r in by_org[o])
    for org_id in limited:  # in id order: two batches never lock two organisations crosswise
        org = repo.lock_organization(org_id)
        if org is None:
            continue
        plan = plan_of(org.plan)
        limit = plan.spec.monthly_receipts
        if limit is None:  # upgraded since we looked
            continue
        _release(repo, org_id, plan, now)
        room = max(limit - repo.counted_since(org_id, month_start(now)), 0)
        new = [r for r in by_org[org_id] if r["id"] not in stored]
        new.sort(key=lambda r: (r["captured_at"], r["id"]))
        over = new[room:]
        for row in over:
            row["held_reason"], row["held_at"] = MONTHLY_QUOTA, now
        if over:
            _count_later(session, plan, len(over))
            logger.info(
                "organisation %s reached its %s quota of %d receipts this month: %d held",
                org_id,
                plan.value,
                limit,
                len(over),
            )
    return out


def _release(repo: PlanRepository, org_id: uuid.UUID, plan: Plan, now: dt.datetime) -> int:
    limit = plan.spec.monthly_receipts
    room = None if limit is None else max(limit - repo.counted_since(org_id, month_start(now)), 0)
    if room == 0:
        return 0
    ids = repo.held(org_id, room)
    repo.release(ids, now)
    receipts_released(repo.session, ids)
    if ids:
        logger.info("released %d held receipts of organisation %s", len(ids), org_id)
    return len(ids)


def release_held(
    session: Session, organization_id: uuid.UUID, now: dt.datetime | None = None
) -> int:
    """Release held receipts of the organisation in capture order, as many as its plan lets
    this month; returns how many. In the caller's transaction."""
    repo = PlanRepository(session)
    org = repo.lock_organization(organization_id)
    if org is None:
        return 0
    return _release(repo, organization_id, plan_of(org.plan), now or utcnow())


def release_due(session: Session, now: dt.datetime | None = None) -> int:
    """`release_held` for every organisation with held receipts (a new month, a plan change
    made elsewhere); returns how many were released."""
    now = now or utcnow()
    orgs = PlanRepository(session).organizations_with_held()
    return sum(release_held(session, org_id, now) for org_id in sorted(orgs))


class PlanChange:
    """What `change_plan` did."""

    def __init__(self, before: Plan, after: Plan, released: int) -> None:
        self.before, self.after, self.released = before, after, released


def change_plan(
    session: Session, organization_id: uuid.UUID, plan: Plan, actor: Actor
) -> PlanChange:
    """Put the organisation on `plan` (audited) and release what the new plan has room for.
    Receipts admitted before a downgrade stay admitted."""
    repo = PlanRepository(session)
    org = repo.lock_organization(organization_id)
    if org is None:
        raise LookupError(f"no organisation {organization_id}")
    before = plan_of(org.plan)
    if before != plan:
        org.plan = plan.value
        session.flush()
        record_change(
            session,
            actor=actor,
            organization_id=organization_id,
            action="organization.plan_changed",
            entity_type="organization",
            entity_id=organization_id,
            before={"plan": before.value},
            after={"plan": plan.value},
        )
        logger.info("organisation %s moved from %s to %s", organization_id, before, plan)
    released = _release(repo, organization_id, plan, utcnow())
    return PlanChange(before, plan, released)


# --------------------------------------------------------------------------- metric


def _count_later(session: Session, plan: Plan, n: int) -> None:
    pending: Tally[str] = session.info.setdefault(_PENDING, Tally())
    pending[plan.value] += n


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    pending: Tally[str] | None = session.info.pop(_PENDING, None)
    for plan, n in (pending or {}).items():
        QUOTA_HELD.labels(plan).inc(n)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
