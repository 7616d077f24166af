"""Organisation plans and quotas, scoped API keys, held receipts.

- ``organizations.plan``: new organisations start on ``starter``. Organisations that exist when
  this revision runs are set to ``enterprise``: they were created before plans existed, with no
  receipt limit and with API access, and a migration must not start holding their receipts or
  refusing their integrations. The operator moves them to their real plan
  (``receipts admin set-plan``, or billing through ``PUT /api/v1/organization/plan``).
- ``api_tokens`` gains what API keys need (kind, scope, prefix, expiry, last use, creator). Tokens
  issued before are ``kind = token`` (operator-issued) and ``read-write``: they keep working.
- ``receipts.held_reason/held_at/released_at``: receipts over the month's quota, stored and held.

SQLite: ``organizations`` and ``receipts`` are parents of ON DELETE CASCADE foreign keys, so they
are altered in place (ADD COLUMN), never rebuilt in batch mode (dropping the old copy of a parent
table with foreign keys on would cascade into its children). ``api_tokens`` has no children and
is rebuilt in batch mode for its new foreign key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column(
            "plan",
            sa.String(length=16),
            nullable=False,
            server_default="starter",
            comment="starter, pro, business or enterprise (server.plans.catalog).",
        ),
    )
    op.execute("UPDATE organizations SET plan = 'enterprise'")  # the rows that exist now

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.String(length=8),
                nullable=False,
                server_default="token",
                comment="token: issued by the operator (admin create-token); "
                "key: made by an owner/admin.",
            )
        )
        batch_op.add_column(
            sa.Column(
                "scope",
                sa.String(length=16),
                nullable=False,
                server_default="read-write",
                comment="read (GET only) or read-write.",
            )
        )
        batch_op.add_column(
            sa.Column(
                "prefix",
                sa.String(length=16),
                nullable=False,
                server_default="",
                comment="First characters, to recognise it.",
            )
        )
        batch_op.add_column(
            sa.Column("expires_at", server.db.types.TZDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "last_used_at",
                server.db.types.TZDateTime(timezone=True),
                nullable=True,
                comment="Updated at most once a minute.",
            )
        )
        batch_op.add_column(sa.Column("created_by", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_created_by_users"),
            "users",
            ["created_by"],
            ["id"],
            ondelete="SET NULL",
        )

    op.add_column(
        "receipts",
        sa.Column(
            "held_reason",
            sa.String(length=40),
            nullable=True,
            comment="Why it is held (monthly_quota); null: it counts (server/plans/quota.py).",
        ),
    )
    op.add_column(
        "receipts",
        sa.Column("held_at", server.db.types.TZDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "receipts",
        sa.Column(
            "released_at",
            server.db.types.TZDateTime(timezone=True),
            nullable=True,
            comment="When a hold ended; the release counts against that month.",
        ),
    )
    op.create_index(op.f("ix_receipts_held_at"), "receipts", ["held_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_receipts_held_at"), table_name="receipts")
    op.drop_column("receipts", "released_at")
    op.drop_column("receipts", "held_at")
    op.drop_column("receipts", "held_reason")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_created_by_users"), type_="foreignkey")
        batch_op.drop_column("created_by")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("prefix")
        batch_op.drop_column("scope")
        batch_op.drop_column("kind")
    op.drop_column("organizations", "plan")
