"""Fleet: roles of API tokens, and removed devices kept as tombstones.

- ``api_tokens.role``: what a bearer token may do (``server.accounts.roles``). Tokens issued
  before this revision keep the power they had: ``admin``.
- ``devices.removed_at``: set when an owner deletes a scanner. The row stays as a tombstone
  (its receipts and images point at it, and ``receipts.device_id`` cascades on delete); its
  credentials, configuration, commands and telemetry are deleted (``server.fleet.removal``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "role",
                sa.String(length=16),
                nullable=False,
                server_default="admin",
                comment="owner, admin, member or viewer (server.accounts.roles).",
            )
        )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "removed_at",
                server.db.types.TZDateTime(timezone=True),
                nullable=True,
                comment="Deleted by its owner: a tombstone kept for its receipts.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("role")
