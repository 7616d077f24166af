"""Photo uploads and the background job queue; duplicate receipts.

- ``jobs``: the durable job queue (server/jobs): state, attempts, backoff, worker lease.
- ``uploads``: photos uploaded from a phone or an API client, each read by a job.
- ``receipts``: ``device_id`` may be null (an uploaded photo has no scanner); ``source``
  (scanner or upload, existing rows: scanner), ``uploaded_by``; ``duplicate_of`` and
  ``not_duplicate`` (server/receipts/duplicates.py).
- ``receipt_images``: ``device_id`` may be null; ``dhash``, the image's perceptual hash.
  Images stored before this revision have none and take no part in duplicate detection.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import server.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = server.db.types.TZDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "organization_id",
            sa.Uuid(),
            nullable=True,
            comment="The organisation the work is for, if any.",
        ),
        sa.Column("kind", sa.String(length=40), nullable=False, comment="Which handler runs it."),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "attempts", sa.Integer(), nullable=False, comment="Times a worker has claimed it."
        ),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "run_after",
            _TS,
            nullable=False,
            comment="Not claimed before this time (retry backoff).",
        ),
        sa.Column(
            "locked_by", sa.String(length=200), nullable=True, comment="The worker running it."
        ),
        sa.Column(
            "locked_until",
            _TS,
            nullable=True,
            comment="Lease end: after it, another worker may take the job over.",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="The last failure."),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_state")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_jobs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_claim", ["state", "run_after"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_jobs_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "uploads",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "uploaded_by",
            sa.Uuid(),
            nullable=True,
            comment="The dashboard user; null for an API token.",
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column(
            "sha256",
            sa.String(length=64),
            nullable=False,
            comment="The photo as uploaded, in the store.",
        ),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_uploads_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_uploads_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["users.id"],
            name=op.f("fk_uploads_uploaded_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_uploads_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_uploads_uploaded_by"), ["uploaded_by"], unique=False)

    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.alter_column(
            "device_id",
            existing_type=sa.Uuid(),
            nullable=True,
            comment="The scanner that read it; null for a photo uploaded from a phone.",
        )
        batch_op.add_column(
            sa.Column(
                "source",
                sa.String(length=16),
                server_default="scanner",
                nullable=False,
                comment="How it came in: scanner or upload.",
            )
        )
        batch_op.add_column(
            sa.Column(
                "uploaded_by",
                sa.Uuid(),
                nullable=True,
                comment="The user who uploaded the photo (uploads made with an API token: null).",
            )
        )
        batch_op.add_column(
            sa.Column(
                "duplicate_of",
                sa.Uuid(),
                nullable=True,
                comment="The earlier receipt this one repeats (server/receipts/duplicates.py).",
            )
        )
        batch_op.add_column(
            sa.Column(
                "not_duplicate",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
                comment="A person said it is no duplicate: never flagged again.",
            )
        )
        batch_op.create_index(
            batch_op.f("ix_receipts_duplicate_of"), ["duplicate_of"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_receipts_uploaded_by_users"),
            "users",
            ["uploaded_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_receipts_duplicate_of_receipts"),
            "receipts",
            ["duplicate_of"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("receipt_images", schema=None) as batch_op:
        batch_op.alter_column(
            "device_id",
            existing_type=sa.Uuid(),
            nullable=True,
            comment="Null for an uploaded photo.",
        )
        batch_op.add_column(
            sa.Column(
                "dhash",
                sa.BigInteger(),
                nullable=True,
                comment="64-bit difference hash (signed) for duplicate detection; "
                "null if undecodable.",
            )
        )


def downgrade() -> None:
    # Receipts and images without a scanner (uploads) cannot exist below this revision.
    op.execute("DELETE FROM receipt_images WHERE device_id IS NULL")
    op.execute("DELETE FROM receipts WHERE device_id IS NULL")
    with op.batch_alter_table("receipt_images", schema=None) as batch_op:
        batch_op.drop_column("dhash")
        batch_op.alter_column(
            "device_id",
            existing_type=sa.Uuid(),
            nullable=False,
            comment=None,
            existing_comment="Null for an uploaded photo.",
        )

    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_receipts_duplicate_of_receipts"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_receipts_uploaded_by_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_receipts_duplicate_of"))
        batch_op.drop_column("not_duplicate")
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("uploaded_by")
        batch_op.drop_column("source")
        batch_op.alter_column(
            "device_id",
            existing_type=sa.Uuid(),
            nullable=False,
            comment=None,
            existing_comment="The scanner that read it; null for a photo uploaded from a phone.",
        )

    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_uploaded_by"))
        batch_op.drop_index(batch_op.f("ix_uploads_organization_id"))
        batch_op.drop_index(batch_op.f("ix_uploads_job_id"))
    op.drop_table("uploads")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_organization_id"))
        batch_op.drop_index("ix_jobs_claim")
    op.drop_table("jobs")
