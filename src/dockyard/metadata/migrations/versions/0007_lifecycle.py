"""Lifecycle: immutable tag rules, retention policies, quotas, usage and pull counts.

Usage counters and the immutability check are triggers: every writer of ``repository_blobs``
and ``tags`` (pushes, mounts, deletes, the garbage collector) keeps them right in its own
transaction without knowing about them (see ``dockyard.lifecycle``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Revisions are snapshots: they spell their types out instead of importing today's schema.
NAME = sa.String().with_variant(sa.String(collation="C"), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)

# The marker the registry recognises in the error a refused tag change raises.
IMMUTABLE = "dockyard: TAG_IMMUTABLE"


def _sqlite_namespace(repository_id: str) -> str:
    return (
        "(SELECT CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1) "
        f"ELSE name END FROM repositories WHERE id = {repository_id})"
    )


def _sqlite_immutable(row: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM immutable_tag_rules r, repositories p "
        f"WHERE p.id = {row}.repository_id AND p.name GLOB r.repository_pattern "
        f"AND {row}.name GLOB r.tag_pattern)"
    )


_NEW_NS = _sqlite_namespace("NEW.repository_id")
_OLD_NS = _sqlite_namespace("OLD.repository_id")

SQLITE = [
    f"""
CREATE TRIGGER lifecycle_link AFTER INSERT ON repository_blobs
BEGIN
  INSERT INTO repository_usage (repository_id, bytes, blobs)
    SELECT NEW.repository_id, size, 1 FROM blobs WHERE digest = NEW.digest
    ON CONFLICT (repository_id) DO UPDATE
      SET bytes = bytes + excluded.bytes, blobs = blobs + 1;
  INSERT INTO namespace_blobs (namespace, digest, links, size)
    SELECT {_NEW_NS}, NEW.digest, 1, size FROM blobs WHERE digest = NEW.digest
    ON CONFLICT (namespace, digest) DO UPDATE SET links = links + 1;
  INSERT INTO namespace_usage (namespace, bytes, blobs)
    SELECT namespace, size, 1 FROM namespace_blobs
    WHERE namespace = {_NEW_NS} AND digest = NEW.digest AND links = 1
    ON CONFLICT (namespace) DO UPDATE
      SET bytes = bytes + excluded.bytes, blobs = blobs + 1;
END
""",
    f"""
CREATE TRIGGER lifecycle_unlink AFTER DELETE ON repository_blobs
BEGIN
  UPDATE repository_usage
    SET bytes = bytes - coalesce((SELECT size FROM blobs WHERE digest = OLD.digest), 0),
        blobs = blobs - 1
    WHERE repository_id = OLD.repository_id;
  UPDATE namespace_blobs SET links = links - 1
    WHERE namespace = {_OLD_NS} AND digest = OLD.digest;
  UPDATE namespace_usage
    SET bytes = bytes - (SELECT size FROM namespace_blobs
                         WHERE namespace = {_OLD_NS} AND digest = OLD.digest),
        blobs = blobs - 1
    WHERE namespace = {_OLD_NS} AND EXISTS (
      SELECT 1 FROM namespace_blobs
      WHERE namespace = {_OLD_NS} AND digest = OLD.digest AND links <= 0);
  DELETE FROM namespace_blobs
    WHERE namespace = {_OLD_NS} AND digest = OLD.digest AND links <= 0;
END
""",
    f"""
CREATE TRIGGER lifecycle_immutable_move BEFORE UPDATE OF manifest_id ON tags
WHEN NEW.manifest_id <> OLD.manifest_id AND {_sqlite_immutable("OLD")}
BEGIN
  SELECT RAISE(ABORT, '{IMMUTABLE}');
END
""",
    f"""
CREATE TRIGGER lifecycle_immutable_delete BEFORE DELETE ON tags
WHEN {_sqlite_immutable("OLD")}
BEGIN
  SELECT RAISE(ABORT, '{IMMUTABLE}');
END
""",
]

POSTGRESQL = [
    """
CREATE FUNCTION lifecycle_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ns text;
  blob_size bigint;
  remaining bigint;
BEGIN
  SELECT split_part(name, '/', 1) INTO ns FROM repositories WHERE id = NEW.repository_id;
  SELECT size INTO blob_size FROM blobs WHERE digest = NEW.digest;
  INSERT INTO repository_usage AS u (repository_id, bytes, blobs)
    VALUES (NEW.repository_id, blob_size, 1)
    ON CONFLICT (repository_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes, blobs = u.blobs + 1;
  INSERT INTO namespace_blobs AS b (namespace, digest, links, size)
    VALUES (ns, NEW.digest, 1, blob_size)
    ON CONFLICT (namespace, digest) DO UPDATE SET links = b.links + 1
    RETURNING links INTO remaining;
  IF remaining = 1 THEN
    INSERT INTO namespace_usage AS u (namespace, bytes, blobs) VALUES (ns, blob_size, 1)
      ON CONFLICT (namespace) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes, blobs = u.blobs + 1;
  END IF;
  RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION lifecycle_unlink() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ns text;
  blob_size bigint;
  remaining bigint;
BEGIN
  SELECT split_part(name, '/', 1) INTO ns FROM repositories WHERE id = OLD.repository_id;
  UPDATE repository_usage
    SET bytes = bytes - coalesce((SELECT size FROM blobs WHERE digest = OLD.digest), 0),
        blobs = blobs - 1
    WHERE repository_id = OLD.repository_id;
  UPDATE namespace_blobs SET links = links - 1
    WHERE namespace = ns AND digest = OLD.digest
    RETURNING links, size INTO remaining, blob_size;
  IF remaining <= 0 THEN
    DELETE FROM namespace_blobs WHERE namespace = ns AND digest = OLD.digest;
    UPDATE namespace_usage SET bytes = bytes - blob_size, blobs = blobs - 1
      WHERE namespace = ns;
  END IF;
  RETURN NULL;
END
$$
""",
    f"""
CREATE FUNCTION lifecycle_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.manifest_id = OLD.manifest_id THEN
    RETURN NEW;
  END IF;
  IF EXISTS (
    SELECT 1 FROM immutable_tag_rules r JOIN repositories p ON p.id = OLD.repository_id
    WHERE p.name ~ r.repository_regex AND OLD.name ~ r.tag_regex
  ) THEN
    RAISE EXCEPTION '{IMMUTABLE}';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$
""",
    "CREATE TRIGGER lifecycle_link AFTER INSERT ON repository_blobs "
    "FOR EACH ROW EXECUTE FUNCTION lifecycle_link()",
    "CREATE TRIGGER lifecycle_unlink AFTER DELETE ON repository_blobs "
    "FOR EACH ROW EXECUTE FUNCTION lifecycle_unlink()",
    "CREATE TRIGGER lifecycle_immutable BEFORE UPDATE OR DELETE ON tags "
    "FOR EACH ROW EXECUTE FUNCTION lifecycle_immutable()",
]

_NAMESPACE_OF = {
    "sqlite": (
        "CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) "
        "ELSE r.name END"
    ),
    "postgresql": "split_part(r.name, '/', 1)",
}


def _backfill(dialect: str) -> list[str]:
    """Counters for what is already stored (one scan, at upgrade time only)."""
    namespace = _NAMESPACE_OF[dialect]
    return [
        "INSERT INTO repository_usage (repository_id, bytes, blobs) "
        "SELECT rb.repository_id, sum(b.size), count(*) FROM repository_blobs rb "
        "JOIN blobs b ON b.digest = rb.digest GROUP BY rb.repository_id",
        "INSERT INTO namespace_blobs (namespace, digest, links, size) "
        f"SELECT {namespace}, rb.digest, count(*), max(b.size) FROM repository_blobs rb "
        "JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest "
        f"GROUP BY {namespace}, rb.digest",
        "INSERT INTO namespace_usage (namespace, bytes, blobs) "
        "SELECT namespace, sum(size), count(*) FROM namespace_blobs GROUP BY namespace",
    ]


def upgrade() -> None:
    op.create_table(
        "immutable_tag_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("repository_pattern", NAME, nullable=False),
        sa.Column("tag_pattern", NAME, nullable=False),
        sa.Column("repository_regex", sa.String(), nullable=False),
        sa.Column("tag_regex", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_immutable_tag_rules"),
        sa.UniqueConstraint(
            "repository_pattern",
            "tag_pattern",
            name="uq_immutable_tag_rules_repository_pattern_tag_pattern",
        ),
    )
    op.create_table(
        "retention_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("repository_pattern", NAME, nullable=False),
        sa.Column("tag_pattern", NAME, nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("keep_within", sa.BigInteger(), nullable=True),
        sa.Column("keep_pattern", NAME, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_policies"),
    )
    op.create_table(
        "quotas",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("scope", "name", name="pk_quotas"),
        sa.CheckConstraint("scope IN ('namespace', 'repository')", name="ck_quotas_scope"),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("namespace", NAME, nullable=False),
        sa.Column("repository", NAME, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quota_reservations"),
    )
    op.create_index("ix_quota_reservations_namespace", "quota_reservations", ["namespace"])
    op.create_index("ix_quota_reservations_repository", "quota_reservations", ["repository"])
    op.create_table(
        "namespace_usage",
        sa.Column("namespace", NAME, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("blobs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", name="pk_namespace_usage"),
    )
    op.create_table(
        "namespace_blobs",
        sa.Column("namespace", NAME, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("links", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "digest", name="pk_namespace_blobs"),
    )
    op.create_table(
        "repository_usage",
        sa.Column("repository_id", ID, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("blobs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", name="pk_repository_usage"),
    )
    op.create_table(
        "tag_pulls",
        sa.Column("repository", NAME, nullable=False),
        sa.Column("tag", NAME, nullable=False),
        sa.Column("pulls", sa.BigInteger(), nullable=False),
        sa.Column("last_pulled_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("repository", "tag", name="pk_tag_pulls"),
    )
    dialect = op.get_bind().dialect.name
    for statement in _backfill(dialect):
        op.execute(statement)
    for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in (
            "lifecycle_link",
            "lifecycle_unlink",
            "lifecycle_immutable_move",
            "lifecycle_immutable_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        op.execute("DROP TRIGGER IF EXISTS lifecycle_immutable ON tags")
        op.execute("DROP TRIGGER IF EXISTS lifecycle_unlink ON repository_blobs")
        op.execute("DROP TRIGGER IF EXISTS lifecycle_link ON repository_blobs")
        for function in ("lifecycle_immutable", "lifecycle_unlink", "lifecycle_link"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    for table in (
        "tag_pulls",
        "repository_usage",
        "namespace_blobs",
        "namespace_usage",
        "quota_reservations",
        "quotas",
        "retention_policies",
        "immutable_tag_rules",
    ):
        op.drop_table(table)
