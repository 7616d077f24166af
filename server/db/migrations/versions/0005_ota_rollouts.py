"""OTA: releases, staged rollouts and their devices.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 22:36:16.050175
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import server.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "name", sa.String(length=64), nullable=False, comment="The manifest's release name."
        ),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="models or agent."),
        sa.Column(
            "manifest", sa.Text(), nullable=False, comment="The manifest's exact (signed) text."
        ),
        sa.Column(
            "signature", sa.Text(), nullable=False, comment="Base64 Ed25519 over the manifest."
        ),
        sa.Column("artifact_size", sa.BigInteger(), nullable=False),
        sa.Column(
            "artifact_sha256", sa.String(length=64), nullable=False, comment="Also its file name."
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_releases_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_releases_organization_id")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_releases_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "rollouts",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("release_id", sa.Uuid(), nullable=False),
        sa.Column("canary_percent", sa.Double(), nullable=False),
        sa.Column(
            "waves",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
            comment="Cumulative percentages.",
        ),
        sa.Column(
            "failure_threshold",
            sa.Double(),
            nullable=False,
            comment="Largest share of failed installs.",
        ),
        sa.Column("quality_drop_threshold", sa.Double(), nullable=False),
        sa.Column("min_scans", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="pending, running, halted, completed, aborted.",
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column(
            "gates_since",
            server.db.types.TZDateTime(timezone=True),
            nullable=True,
            comment="Resumed at: earlier failures and receipts no longer count.",
        ),
        sa.Column("failures_forgiven", sa.Integer(), nullable=False),
        sa.Column("updated_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_rollouts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
            name=op.f("fk_rollouts_release_id_releases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollouts_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.Uuid(), nullable=False),
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False, comment="0 is the canary."),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, installing, updated, failed.",
        ),
        sa.Column("command_id", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            server.db.types.TZDateTime(timezone=True),
            nullable=True,
            comment="When its install succeeded (its receipts count from here).",
        ),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["device_commands.id"],
            name=op.f("fk_rollout_devices_command_id_device_commands"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_rollout_devices_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_devices_rollout_id_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rollout_id", "device_pk", name=op.f("pk_rollout_devices")),
    )


def downgrade() -> None:
    op.drop_table("rollout_devices")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollouts_organization_id"))

    op.drop_table("rollouts")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_organization_id"))

    op.drop_table("releases")
