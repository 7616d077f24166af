"""The monthly spend rollup (PostgreSQL): one row per organisation, month, currency and category
with the count and sum of the receipts analytics counts, kept exact by a trigger on `receipts`.

Why: spend per month or category summed an organisation's receipts on every request (an
index-only scan, but 10,000-40,000 index tuples, 5-20 ms of database CPU per request at a
million receipts); the rollup has a few hundred rows per organisation.

Why a trigger (migration 0011, `receipt_spend_monthly_sync`): receipts change through many
paths (admission, corrections, duplicate flags and their undoing, quota holds and releases,
deletion of a receipt, a device or an organisation, and the `ON DELETE SET NULL` of
`duplicate_of` when an original is deleted). A row trigger sees every one of them, inside the
transaction that makes the change, so the rollup is never ahead of or behind the receipts a
reader sees. Counted receipts are those analytics counts: not a duplicate, not held.

A row is deleted when its count reaches zero, so the table has no empty groups and needs no
foreign key (which would fight the cascade when an organisation is deleted).

Cost and contention: one upsert per counted receipt written. Writers to the same organisation
and month serialise on that month's rows until they commit (ingest transactions are short); two
transactions touching several of the same rows in opposite orders can deadlock, which
PostgreSQL detects and the ingest worker retries like any failed batch.

Loading around the trigger (COPY with ``session_replication_role = replica``, as the scale
benchmark does) must call `rebuild` afterwards. The SQL is repeated in migration 0011 on
purpose: a migration does not import application code that may change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

#: The rollup table, for reading (the migration creates it; it is not in the ORM metadata).
spend_monthly = sa.Table(
    "receipt_spend_monthly",
    sa.MetaData(),
    sa.Column("organization_id", sa.Uuid, nullable=False),
    sa.Column("month", sa.Date, nullable=False),
    sa.Column("currency", sa.String(8)),
    sa.Column("category", sa.String(500)),
    sa.Column("receipts", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Numeric, nullable=False),
)

#: Every row of the rollup, from the receipts themselves (what the trigger keeps it equal to).
REBUILD_SQL = """
INSERT INTO receipt_spend_monthly (organization_id, month, currency, category, receipts, total)
SELECT organization_id, date_trunc('month', effective_date)::date, currency, category,
       count(*), coalesce(sum(total), 0)
FROM receipts
WHERE duplicate_of IS NULL AND held_at IS NULL
GROUP BY 1, 2, 3, 4
"""

#: Groups where the rollup and the receipts disagree, with the side they are on.
DRIFT_SQL = """
WITH truth AS (
    SELECT organization_id, date_trunc('month', effective_date)::date AS month, currency,
           category, count(*) AS receipts, coalesce(sum(total), 0) AS total
    FROM receipts
    WHERE duplicate_of IS NULL AND held_at IS NULL
    GROUP BY 1, 2, 3, 4
), rollup AS (
    SELECT organization_id, month, currency, category, receipts, total
    FROM receipt_spend_monthly
)
(SELECT 'extra' AS side, * FROM (TABLE rollup EXCEPT ALL TABLE truth) AS e)
UNION ALL
(SELECT 'missing' AS side, * FROM (TABLE truth EXCEPT ALL TABLE rollup) AS m)
"""


def rebuild(conn: Connection) -> None:
    """Recompute the whole rollup from `receipts` (after a load that bypassed the trigger)."""
    conn.execute(sa.text("DELETE FROM receipt_spend_monthly"))
    conn.execute(sa.text(REBUILD_SQL))


def drift(conn: Connection) -> list[tuple[object, ...]]:
    """Groups where the rollup and the receipts disagree (empty: exact); for tests and checks."""
    return [tuple(r) for r in conn.execute(sa.text(DRIFT_SQL))]
