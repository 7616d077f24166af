"""Fleet: claim codes, broker accounts, device certificates, config shadows, commands, telemetry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:37:14.032712
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import server.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "claim_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("expires_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("used_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column(
            "device_id",
            sa.String(length=64),
            nullable=True,
            comment="The device id that redeemed the code.",
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_claim_codes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_claim_codes_code_hash")),
    )
    with op.batch_alter_table("claim_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_claim_codes_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "broker_accounts",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False, comment="device or ingest"),
        sa.Column("device_pk", sa.Uuid(), nullable=True),
        sa.Column("updated_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_broker_accounts_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_accounts")),
        sa.UniqueConstraint("device_pk", name=op.f("uq_broker_accounts_device_pk")),
        sa.UniqueConstraint("username", name=op.f("uq_broker_accounts_username")),
    )
    op.create_table(
        "device_certificates",
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False, comment="Hexadecimal."),
        sa.Column("not_after", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("revoked_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_device_certificates_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_certificates")),
        sa.UniqueConstraint("serial", name=op.f("uq_device_certificates_serial")),
    )
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_certificates_device_pk"), ["device_pk"], unique=False
        )

    op.create_table(
        "device_commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column("published_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, succeeded, failed, rejected, expired.",
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "output", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("finished_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column("result_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_device_commands_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_device_commands_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_commands")),
    )
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_commands_device_created", ["device_pk", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_commands_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "device_configs",
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=False),
        sa.Column(
            "desired", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("desired_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.Column(
            "published_version",
            sa.Integer(),
            nullable=True,
            comment="The desired version the broker last acknowledged.",
        ),
        sa.Column("reported_version", sa.Integer(), nullable=True),
        sa.Column(
            "reported", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "rejected",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
            comment="Setting -> the device's reason for refusing it.",
        ),
        sa.Column("reported_at", server.db.types.TZDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_device_configs_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_device_configs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_pk", name=op.f("pk_device_configs")),
    )
    with op.batch_alter_table("device_configs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_configs_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "device_telemetry",
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            nullable=False,
            comment="Per device, increasing: pruning keeps the last N by it.",
        ),
        sa.Column("received_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", server.db.types.TZDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_device_telemetry_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_device_telemetry_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_telemetry")),
    )
    with op.batch_alter_table("device_telemetry", schema=None) as batch_op:
        batch_op.create_index("ix_device_telemetry_device_seq", ["device_pk", "seq"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_device_telemetry_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("device_telemetry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_telemetry_organization_id"))
        batch_op.drop_index("ix_device_telemetry_device_seq")

    op.drop_table("device_telemetry")
    with op.batch_alter_table("device_configs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_configs_organization_id"))

    op.drop_table("device_configs")
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_commands_organization_id"))
        batch_op.drop_index("ix_device_commands_device_created")

    op.drop_table("device_commands")
    with op.batch_alter_table("device_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_certificates_device_pk"))

    op.drop_table("device_certificates")
    op.drop_table("broker_accounts")
    with op.batch_alter_table("claim_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_codes_organization_id"))

    op.drop_table("claim_codes")
