"""Hub: stars and READMEs (webhooks and their delivery history come later).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# Revisions are snapshots: they spell their types out instead of importing today's schema.
NAME = sa.String().with_variant(sa.String(collation="C"), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stars",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("repository", NAME, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "repository", name="pk_stars"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_stars_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_stars_repository", "stars", ["repository"])
    op.create_table(
        "readmes",
        sa.Column("repository", NAME, nullable=False),
        sa.Column("markdown", sa.String(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository", name="pk_readmes"),
    )


def downgrade() -> None:
    op.drop_table("readmes")
    op.drop_table("stars")
