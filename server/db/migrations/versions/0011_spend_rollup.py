"""Monthly spend rollup kept by a trigger, and a month's list from the covering index.

PostgreSQL only (SQLite, the single-machine default, sums its receipts directly):

- ``receipt_spend_monthly``: per organisation, month (of ``effective_date``), currency and
  category, the count and sum of the receipts analytics counts (not a duplicate, not held).
  The row trigger ``receipt_spend_monthly_sync`` on ``receipts`` keeps it exact in the
  transaction of every insert, update and delete, including the ones foreign-key cascades
  make; a group is deleted when its count reaches zero. Backfilled here from the receipts.
  (Why a rollup and why a trigger: ``server/analytics/rollup.py``.)
- ``ix_receipts_org_effective_date`` also INCLUDEs ``captured_at``: the receipt list filtered
  to a date range picks its page (newest capture first) from the index alone and reads only
  that page's rows (``server.receipts.repository.ReceiptRepository.rows``); before, it walked
  the organisation's list newest first and dropped the rows outside the range, up to every
  receipt of the organisation for an old month.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ANALYTICS_INCLUDE_0010 = [
    "id",
    "currency",
    "total",
    "tax_total",
    "category",
    "device_id",
    "duplicate_of",
    "held_at",
]

_FUNCTION = """
CREATE FUNCTION receipt_spend_monthly_add(
    o uuid, d date, cur varchar, cat varchar, amount numeric, n integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', d)::date;
    left_over bigint;
BEGIN
    IF n > 0 THEN
        INSERT INTO receipt_spend_monthly AS s
            (organization_id, month, currency, category, receipts, total)
        VALUES (o, m, cur, cat, n, coalesce(amount, 0) * n)
        ON CONFLICT (organization_id, month, currency, category) DO UPDATE
        SET receipts = s.receipts + excluded.receipts, total = s.total + excluded.total;
    ELSE
        UPDATE receipt_spend_monthly AS s
        SET receipts = s.receipts + n, total = s.total + coalesce(amount, 0) * n
        WHERE s.organization_id = o AND s.month = m
          AND s.currency IS NOT DISTINCT FROM cur AND s.category IS NOT DISTINCT FROM cat
        RETURNING s.receipts INTO left_over;
        IF left_over = 0 THEN
            DELETE FROM receipt_spend_monthly AS s
            WHERE s.organization_id = o AND s.month = m
              AND s.currency IS NOT DISTINCT FROM cur AND s.category IS NOT DISTINCT FROM cat;
        END IF;
    END IF;
END $$;

CREATE FUNCTION receipt_spend_monthly_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.organization_id = OLD.organization_id
       AND NEW.effective_date = OLD.effective_date
       AND NEW.currency IS NOT DISTINCT FROM OLD.currency
       AND NEW.category IS NOT DISTINCT FROM OLD.category
       AND NEW.total IS NOT DISTINCT FROM OLD.total
       AND (NEW.duplicate_of IS NULL) = (OLD.duplicate_of IS NULL)
       AND (NEW.held_at IS NULL) = (OLD.held_at IS NULL) THEN
        RETURN NULL;  -- nothing analytics counts has changed
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.duplicate_of IS NULL AND OLD.held_at IS NULL THEN
        PERFORM receipt_spend_monthly_add(
            OLD.organization_id, OLD.effective_date, OLD.currency, OLD.category, OLD.total, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.duplicate_of IS NULL AND NEW.held_at IS NULL THEN
        PERFORM receipt_spend_monthly_add(
            NEW.organization_id, NEW.effective_date, NEW.currency, NEW.category, NEW.total, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER receipt_spend_monthly_sync
AFTER INSERT OR DELETE OR UPDATE OF
    organization_id, effective_date, currency, category, total, duplicate_of, held_at
ON receipts FOR EACH ROW EXECUTE FUNCTION receipt_spend_monthly_sync();
"""

_BACKFILL = """
INSERT INTO receipt_spend_monthly (organization_id, month, currency, category, receipts, total)
SELECT organization_id, date_trunc('month', effective_date)::date, currency, category,
       count(*), coalesce(sum(total), 0)
FROM receipts
WHERE duplicate_of IS NULL AND held_at IS NULL
GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "receipt_spend_monthly",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False, comment="First day of the month."),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("category", sa.String(length=500), nullable=True),
        sa.Column("receipts", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Numeric(), nullable=False),
        comment="Counted receipts per organisation, month, currency and category; kept by the "
        "trigger receipt_spend_monthly_sync (server/analytics/rollup.py).",
    )
    # one row per group, NULL currency or category included (PostgreSQL 15+)
    op.execute(
        "ALTER TABLE receipt_spend_monthly ADD CONSTRAINT uq_receipt_spend_monthly_group "
        "UNIQUE NULLS NOT DISTINCT (organization_id, month, currency, category)"
    )
    op.execute(_FUNCTION)
    op.execute(_BACKFILL)
    op.drop_index("ix_receipts_org_effective_date", table_name="receipts")
    op.create_index(
        "ix_receipts_org_effective_date",
        "receipts",
        ["organization_id", "effective_date"],
        postgresql_include=[*_ANALYTICS_INCLUDE_0010, "captured_at"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_receipts_org_effective_date", table_name="receipts")
    op.create_index(
        "ix_receipts_org_effective_date",
        "receipts",
        ["organization_id", "effective_date"],
        postgresql_include=_ANALYTICS_INCLUDE_0010,
    )
    op.execute("DROP TRIGGER receipt_spend_monthly_sync ON receipts")
    op.execute("DROP FUNCTION receipt_spend_monthly_sync()")
    op.execute(
        "DROP FUNCTION receipt_spend_monthly_add(uuid, date, varchar, varchar, numeric, integer)"
    )
    op.drop_table("receipt_spend_monthly")
