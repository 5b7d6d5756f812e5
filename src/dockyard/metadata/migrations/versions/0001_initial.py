"""Initial schema: repositories, blobs, manifests, tags, upload sessions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Revisions are snapshots: they spell their types out instead of importing today's schema.
NAME = sa.String().with_variant(sa.String(collation="C"), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("name", name="uq_repositories_name"),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_blobs"),
    )
    op.create_table(
        "repository_blobs",
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_repository_blobs"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_repository_blobs_repository_id_repositories",
        ),
        sa.ForeignKeyConstraint(
            ["digest"], ["blobs.digest"], name="fk_repository_blobs_digest_blobs"
        ),
    )
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])
    op.create_table(
        "manifests",
        sa.Column("id", ID, nullable=False),
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("artifact_type", sa.String(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manifests"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], name="fk_manifests_repository_id_repositories"
        ),
        sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_id_digest"),
    )
    op.create_index("ix_manifests_repository_id_subject", "manifests", ["repository_id", "subject"])
    for table in ("manifest_blobs", "manifest_children"):
        op.create_table(
            table,
            sa.Column("manifest_id", ID, nullable=False),
            sa.Column("digest", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("manifest_id", "digest", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["manifest_id"],
                ["manifests.id"],
                name=f"fk_{table}_manifest_id_manifests",
                ondelete="CASCADE",
            ),
        )
        op.create_index(f"ix_{table}_digest", table, ["digest"])
    op.create_table(
        "tags",
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("manifest_id", ID, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "name", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], name="fk_tags_repository_id_repositories"
        ),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name="fk_tags_manifest_id_manifests",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_tags_manifest_id", "tags", ["manifest_id"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("repository", sa.String(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("hash_state", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
    )
    op.create_index("ix_uploads_updated_at", "uploads", ["updated_at"])


def downgrade() -> None:
    for table in (
        "uploads",
        "tags",
        "manifest_children",
        "manifest_blobs",
        "manifests",
        "repository_blobs",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
