"""Management: repository descriptions, and an index to purge the audit log by age.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # batch: SQLite cannot add a column with every option in place.
    with op.batch_alter_table("repository_settings") as batch:
        batch.add_column(sa.Column("description", sa.String(), nullable=True))
    op.create_index("ix_login_failures_window_start", "login_failures", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_window_start", table_name="login_failures")
    with op.batch_alter_table("repository_settings") as batch:
        batch.drop_column("description")
