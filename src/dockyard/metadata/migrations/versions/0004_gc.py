"""Garbage collection: queues of candidate blobs and manifests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gc_blob_queue",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("queued_at", TIMESTAMP, nullable=False),
        sa.Column("placing_until", TIMESTAMP, nullable=True),
        sa.Column("deleting_until", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_gc_blob_queue"),
    )
    op.create_index("ix_gc_blob_queue_queued_at", "gc_blob_queue", ["queued_at"])
    op.create_table(
        "gc_manifest_queue",
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("queued_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_gc_manifest_queue"),
    )
    op.create_index("ix_gc_manifest_queue_queued_at", "gc_manifest_queue", ["queued_at"])


def downgrade() -> None:
    op.drop_index("ix_gc_manifest_queue_queued_at", "gc_manifest_queue")
    op.drop_table("gc_manifest_queue")
    op.drop_index("ix_gc_blob_queue_queued_at", "gc_blob_queue")
    op.drop_table("gc_blob_queue")
