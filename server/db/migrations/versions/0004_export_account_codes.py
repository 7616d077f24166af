"""Exports: the category -> account-code mapping of each organisation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_account_codes",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "category",
            sa.String(length=100),
            nullable=False,
            comment="Case-folded receipt category; '' is the default for unmapped ones.",
        ),
        sa.Column("account_code", sa.String(length=40), nullable=False),
        sa.Column(
            "tax_type",
            sa.String(length=60),
            nullable=True,
            comment="Xero TaxType / QuickBooks tax code; null: default.",
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_export_account_codes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_account_codes")),
        sa.UniqueConstraint(
            "organization_id", "category", name=op.f("uq_export_account_codes_organization_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("export_account_codes")
