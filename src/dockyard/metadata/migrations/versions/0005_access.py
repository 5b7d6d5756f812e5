"""Access: personal access tokens, robot accounts, failed-login counters, the audit log.

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Revisions are snapshots: they spell their types out instead of importing today's schema.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def _cascade(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=f"fk_{owner}_{column}_{table}", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("scopes", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
        _cascade("user_id", "users", "access_tokens"),
        sa.UniqueConstraint("user_id", "name", name="uq_access_tokens_user_id_name"),
        sa.UniqueConstraint("token_hash", name="uq_access_tokens_token_hash"),
    )
    op.create_table(
        "robots",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_robots"),
        _cascade("user_id", "users", "robots"),
        _cascade("organization_id", "organizations", "robots"),
    )
    op.create_index("ix_robots_organization_id", "robots", ["organization_id"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_failures"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("time", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("client_address", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("repository", sa.String(), nullable=True),
        sa.Column("digest", sa.String(), nullable=True),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("detail", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_actor_time", "audit_events", ["actor", "time"])


def downgrade() -> None:
    for table in ("audit_events", "login_failures", "robots", "access_tokens"):
        op.drop_table(table)
