"""Query columns and indexes for a million receipts: category, tax total, tax lines, search.

- ``receipts.category`` and ``receipts.tax_total``, and the table ``receipt_taxes`` (one row
  per tax line with an amount): what analytics groups and sums, kept as columns instead of
  being read out of the JSON message per row (``server.receipts.derived`` writes them for new
  receipts; a correction of the category overwrites the column). Receipts stored before this
  revision are backfilled here with the same rules, in SQL (the latest category correction
  wins), so the migration does not depend on application code that may change later.
- ``ix_receipts_org_effective_date`` becomes covering on PostgreSQL (INCLUDE the columns
  analytics sums and filters on): an organisation's spend is an index-only scan.
- ``ix_receipts_device_captured`` (device_id, captured_at, id) replaces ``ix_receipts_device_id``:
  one scanner's receipts, newest first, keyset-paged.
- ``ix_receipts_org_received`` and the partial ``ix_receipts_org_released``: the monthly quota
  count (``server.plans.repository.counted_since``) reads this month's receipts, not all.
- ``ix_receipts_merchant_search``: merchant search (``ILIKE '%text%'``) from a pg_trgm GIN
  index on PostgreSQL (the extension is created if missing); a plain index on SQLite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ANALYTICS_INCLUDE = [
    "id",
    "currency",
    "total",
    "tax_total",
    "category",
    "device_id",
    "duplicate_of",
    "held_at",
]

# --------------------------------------------------------------------------- backfill (SQL)

_PG_TAXES = r"""
INSERT INTO receipt_taxes (receipt_id, position, organization_id, label, rate, amount)
SELECT r.id, t.ord - 1, r.organization_id,
       left(NULLIF(t.line ->> 'label', ''), 100),
       CASE WHEN t.line ->> 'rate' ~ '^[-+]?[0-9]{1,14}(\.[0-9]+)?$'
            THEN (t.line ->> 'rate')::numeric END,
       (t.line ->> 'amount')::numeric
FROM receipts r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.document #> '{receipt,fields,taxes}') = 'array'
         THEN r.document #> '{receipt,fields,taxes}' ELSE '[]'::jsonb END
) WITH ORDINALITY AS t(line, ord)
WHERE jsonb_typeof(t.line) = 'object'
  AND t.line ->> 'amount' ~ '^[-+]?[0-9]{1,14}(\.[0-9]+)?$'
"""

_PG_COLUMNS = """
UPDATE receipts SET
    category = left(NULLIF(document #>> '{receipt,fields,category,value}', ''), 500),
    tax_total = (SELECT sum(t.amount) FROM receipt_taxes t WHERE t.receipt_id = receipts.id)
WHERE document #>> '{receipt,fields,category,value}' IS NOT NULL
   OR EXISTS (SELECT 1 FROM receipt_taxes t WHERE t.receipt_id = receipts.id)
"""

# SQLite: amounts stay text (money is text there); rates lose trailing zeros (20.00 -> 20),
# as server.receipts.derived writes them, so one rate is one group.
_SQLITE_TAXES = """
INSERT INTO receipt_taxes (receipt_id, position, organization_id, label, rate, amount)
SELECT r.id, CAST(t.key AS INTEGER), r.organization_id,
       substr(NULLIF(CAST(json_extract(t.value, '$.label') AS TEXT), ''), 1, 100),
       CASE WHEN json_type(t.value, '$.rate') IN ('integer', 'real', 'text')
                 AND CAST(json_extract(t.value, '$.rate') AS TEXT) GLOB '*[0-9]*'
                 AND CAST(json_extract(t.value, '$.rate') AS TEXT) NOT GLOB '*[^0-9.+-]*'
            THEN CASE WHEN instr(CAST(json_extract(t.value, '$.rate') AS TEXT), '.') > 0
                      THEN rtrim(rtrim(CAST(json_extract(t.value, '$.rate') AS TEXT), '0'), '.')
                      ELSE CAST(json_extract(t.value, '$.rate') AS TEXT) END END,
       CAST(json_extract(t.value, '$.amount') AS TEXT)
FROM receipts r, json_each(r.document, '$.receipt.fields.taxes') t
WHERE json_type(r.document, '$.receipt.fields.taxes') = 'array'
  AND t.type = 'object'
  AND json_type(t.value, '$.amount') IN ('integer', 'real', 'text')
  AND CAST(json_extract(t.value, '$.amount') AS TEXT) GLOB '*[0-9]*'
  AND CAST(json_extract(t.value, '$.amount') AS TEXT) NOT GLOB '*[^0-9.+-]*'
"""

_SQLITE_COLUMNS = """
UPDATE receipts SET
    category = substr(
        NULLIF(CAST(json_extract(document, '$.receipt.fields.category.value') AS TEXT), ''),
        1, 500
    ),
    tax_total = (
        SELECT CASE WHEN count(*) > 0
                    THEN printf('%.4f', sum(round(CAST(t.amount AS REAL) * 10000)) / 10000.0) END
        FROM receipt_taxes t WHERE t.receipt_id = receipts.id
    )
WHERE json_extract(document, '$.receipt.fields.category.value') IS NOT NULL
   OR EXISTS (SELECT 1 FROM receipt_taxes t WHERE t.receipt_id = receipts.id)
"""

# Both: the latest correction of the category wins (it may clear it).
_CORRECTED_CATEGORY = """
UPDATE receipts SET category = (
    SELECT substr(c.new_value, 1, 500) FROM receipt_corrections c
    WHERE c.receipt_id = receipts.id AND c.field = 'category'
    ORDER BY c.created_at DESC, c.id DESC LIMIT 1
)
WHERE EXISTS (
    SELECT 1 FROM receipt_corrections c WHERE c.receipt_id = receipts.id AND c.field = 'category'
)
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "category",
                sa.String(length=500),
                nullable=True,
                comment="The category read, or its latest correction (server.receipts.derived).",
            )
        )
        batch_op.add_column(
            sa.Column(
                "tax_total",
                server.db.types.Money(precision=18, scale=4),
                nullable=True,
                comment="Sum of the tax lines read; null: none read (rows in receipt_taxes).",
            )
        )
    op.create_table(
        "receipt_taxes",
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column(
            "position",
            sa.Integer(),
            nullable=False,
            comment="Index of the line in the message's taxes.",
        ),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column(
            "rate",
            server.db.types.Money(precision=18, scale=4),
            nullable=True,
            comment="Percent, without trailing zeros (20, 5.5).",
        ),
        sa.Column("amount", server.db.types.Money(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_receipt_taxes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["receipts.id"],
            name=op.f("fk_receipt_taxes_receipt_id_receipts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("receipt_id", "position", name=op.f("pk_receipt_taxes")),
    )

    op.execute(_PG_TAXES if postgres else _SQLITE_TAXES)
    op.execute(_PG_COLUMNS if postgres else _SQLITE_COLUMNS)
    op.execute(_CORRECTED_CATEGORY)

    op.create_index(
        op.f("ix_receipt_taxes_organization_id"),
        "receipt_taxes",
        ["organization_id"],
        unique=False,
    )
    op.drop_index("ix_receipts_org_effective_date", table_name="receipts")
    op.create_index(
        "ix_receipts_org_effective_date",
        "receipts",
        ["organization_id", "effective_date"],
        unique=False,
        postgresql_include=_ANALYTICS_INCLUDE,
    )
    op.drop_index("ix_receipts_device_id", table_name="receipts")
    op.create_index(
        "ix_receipts_device_captured",
        "receipts",
        ["device_id", "captured_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_receipts_org_received",
        "receipts",
        ["organization_id", "received_at"],
        unique=False,
        postgresql_include=["held_at", "released_at"],
    )
    op.create_index(
        "ix_receipts_org_released",
        "receipts",
        ["organization_id", "released_at"],
        unique=False,
        postgresql_where=sa.text("released_at IS NOT NULL"),
        sqlite_where=sa.text("released_at IS NOT NULL"),
    )
    op.create_index(
        "ix_receipts_merchant_search",
        "receipts",
        ["merchant"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"merchant": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_receipts_merchant_search", table_name="receipts")
    op.drop_index("ix_receipts_org_released", table_name="receipts")
    op.drop_index("ix_receipts_org_received", table_name="receipts")
    op.drop_index("ix_receipts_device_captured", table_name="receipts")
    op.create_index("ix_receipts_device_id", "receipts", ["device_id"], unique=False)
    op.drop_index("ix_receipts_org_effective_date", table_name="receipts")
    op.create_index(
        "ix_receipts_org_effective_date",
        "receipts",
        ["organization_id", "effective_date"],
        unique=False,
    )
    op.drop_index(op.f("ix_receipt_taxes_organization_id"), table_name="receipt_taxes")
    op.drop_table("receipt_taxes")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("tax_total")
        batch_op.drop_column("category")
    # pg_trgm stays: other databases objects may use it, and it holds no data.
