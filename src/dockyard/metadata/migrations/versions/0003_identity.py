"""Identity: users, organizations, teams, repository visibility and permissions, refresh tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Revisions are snapshots: they spell their types out instead of importing today's schema.
NAME = sa.String().with_variant(sa.String(collation="C"), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def _cascade(column: str, table: str, owner: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=f"fk_{owner}_{column}_{table}", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("name", NAME, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_namespaces"),
        sa.CheckConstraint("kind IN ('user', 'organization')", name="ck_namespaces_kind"),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(["name"], ["namespaces.name"], name="fk_users_name_namespaces"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "organizations",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("default_permission", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.ForeignKeyConstraint(
            ["name"], ["namespaces.name"], name="fk_organizations_name_namespaces"
        ),
        sa.UniqueConstraint("name", name="uq_organizations_name"),
    )
    op.create_table(
        "organization_members",
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name="pk_organization_members"),
        _cascade("organization_id", "organizations", "organization_members"),
        _cascade("user_id", "users", "organization_members"),
    )
    op.create_index("ix_organization_members_user_id", "organization_members", ["user_id"])
    op.create_table(
        "teams",
        sa.Column("id", ID, nullable=False),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        _cascade("organization_id", "organizations", "teams"),
        sa.UniqueConstraint("organization_id", "name", name="uq_teams_organization_id_name"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name="pk_team_members"),
        _cascade("team_id", "teams", "team_members"),
        _cascade("user_id", "users", "team_members"),
    )
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"])
    op.create_table(
        "repository_settings",
        sa.Column("repository", NAME, nullable=False),
        sa.Column("visibility", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository", name="pk_repository_settings"),
    )
    for table, subject, referred in (
        ("repository_user_permissions", "user_id", "users"),
        ("repository_team_permissions", "team_id", "teams"),
    ):
        op.create_table(
            table,
            sa.Column("pattern", NAME, nullable=False),
            sa.Column(subject, ID, nullable=False),
            sa.Column("permission", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("pattern", subject, name=f"pk_{table}"),
            _cascade(subject, referred, table),
        )
        op.create_index(f"ix_{table}_{subject}", table, [subject])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
        _cascade("user_id", "users", "refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])


def downgrade() -> None:
    for table in (
        "refresh_tokens",
        "repository_team_permissions",
        "repository_user_permissions",
        "repository_settings",
        "team_members",
        "teams",
        "organization_members",
        "organizations",
        "users",
        "namespaces",
    ):
        op.drop_table(table)
