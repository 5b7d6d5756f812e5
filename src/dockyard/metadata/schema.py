"""The metadata schema as SQLAlchemy Core tables, portable between SQLite and PostgreSQL.

Migrations under ``migrations/versions`` create and evolve this schema; a test compares the
migrated database with these definitions so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

__all__ = [
    "NAME",
    "access_tokens",
    "audit_events",
    "blobs",
    "event_consumers",
    "event_deliveries",
    "events",
    "gc_blob_queue",
    "gc_manifest_queue",
    "immutable_tag_rules",
    "jobs",
    "login_failures",
    "manifest_blobs",
    "manifest_children",
    "manifests",
    "metadata",
    "namespace_blobs",
    "namespace_usage",
    "namespaces",
    "organization_members",
    "organizations",
    "quota_reservations",
    "quotas",
    "readmes",
    "refresh_tokens",
    "repositories",
    "repository_blobs",
    "repository_settings",
    "repository_team_permissions",
    "repository_usage",
    "repository_user_permissions",
    "retention_policies",
    "robots",
    "stars",
    "tag_pulls",
    "tags",
    "team_members",
    "teams",
    "uploads",
    "users",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
]

# Bytewise ordering for names that are paginated: PostgreSQL would otherwise sort by the
# database locale (which may ignore "/" or case), while SQLite's default is already bytewise.
NAME = String().with_variant(String(collation="C"), "postgresql")

# 64-bit surrogate keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY aliases the rowid.
ID = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite keeps no zone, so values are stored as naive UTC
    and given back their zone on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, nullable=False),
    UniqueConstraint("name"),
)

# The global content-addressed set: a blob's bytes are stored once, whoever pushed them.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(), primary_key=True),
    Column("size", BigInteger(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Which repository may serve which blob (pushed or mounted there).
repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", ID, ForeignKey("repositories.id"), nullable=False),
    Column("digest", String(), ForeignKey("blobs.digest"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("repository_id", "digest"),
    # Garbage collection asks which repositories still link a blob.
    Index(None, "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("repository_id", ID, ForeignKey("repositories.id"), nullable=False),
    Column("digest", String(), nullable=False),
    Column("media_type", String(), nullable=False),
    Column("artifact_type", String(), nullable=True),
    Column("subject", String(), nullable=True),
    Column("size", BigInteger(), nullable=False),
    Column("payload", LargeBinary(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("repository_id", "digest"),
    Index(None, "repository_id", "subject"),
)

manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column("manifest_id", ID, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(), nullable=False),
    PrimaryKeyConstraint("manifest_id", "digest"),
    Index(None, "digest"),
)

manifest_children = Table(
    "manifest_children",
    metadata,
    Column("manifest_id", ID, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(), nullable=False),
    PrimaryKeyConstraint("manifest_id", "digest"),
    Index(None, "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", ID, ForeignKey("repositories.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("manifest_id", ID, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("repository_id", "name"),
    # Deleting a manifest finds its tags through this index.
    Index(None, "manifest_id"),
)

# Upload sessions live here rather than in one process so that any replica can continue them.
uploads = Table(
    "uploads",
    metadata,
    Column("id", String(), primary_key=True),
    Column("repository", String(), nullable=False),
    Column("offset", BigInteger(), nullable=False),
    Column("hash_state", LargeBinary(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=True),
    # Purging scans sessions by age.
    Index(None, "updated_at"),
)

# Periodic background jobs: a replica runs a job only after claiming it here (see jobs.py).
jobs = Table(
    "jobs",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("next_run", UtcDateTime(), nullable=False),
    Column("last_run", UtcDateTime(), nullable=True),
)


# Garbage collection candidates (see ``dockyard.core.gc``): blobs that lost a reference or a
# link, or whose bytes are being placed; due ``grace`` after ``queued_at``. ``placing_until``
# and ``deleting_until`` are the leases by which uploads and the collector exclude each other.
gc_blob_queue = Table(
    "gc_blob_queue",
    metadata,
    Column("digest", String(), primary_key=True),
    Column("queued_at", UtcDateTime(), nullable=False),
    Column("placing_until", UtcDateTime(), nullable=True),
    Column("deleting_until", UtcDateTime(), nullable=True),
    Index(None, "queued_at"),
)

# Manifests that lost a tag, an index or their subject: perhaps untagged garbage.
gc_manifest_queue = Table(
    "gc_manifest_queue",
    metadata,
    Column("repository_id", ID, nullable=False),
    Column("digest", String(), nullable=False),
    Column("queued_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("repository_id", "digest"),
    Index(None, "queued_at"),
)

# -- events: the outbox of content events (``dockyard.events``) ------------------------------

# Content events, each written in the transaction of the change it describes; ``body`` is
# the event as JSON. Deleted once no consumer still has to deliver it.
events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("body", String(), nullable=False),
)

# One row per event and consumer (a notification endpoint, the audit log) until delivered.
# Rows, not a cursor on the highest id sent: ids may commit out of order on PostgreSQL.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("consumer", NAME, nullable=False),
    Column("event_id", ID, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("consumer", "event_id"),
    Index(None, "event_id"),
)

# Which process sends a consumer's events: one holder at a time, until its lease expires.
event_consumers = Table(
    "event_consumers",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("holder", String(), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
)

# -- identity: accounts, organizations and who may do what (``dockyard.identity``) ----------

# A namespace (the first component of a repository name) belongs to one user or one
# organization: this table makes the name unique across both, whoever creates it first.
namespaces = Table(
    "namespaces",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("kind", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("kind IN ('user', 'organization')", name="ck_namespaces_kind"),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, ForeignKey("namespaces.name"), nullable=False),
    # None: no password login (an account of an external identity source).
    Column("password_hash", String(), nullable=True),
    Column("is_admin", Boolean(), nullable=False),
    Column("disabled", Boolean(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("name"),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, ForeignKey("namespaces.name"), nullable=False),
    # What every member may do on the organization's repositories: none, read, write, admin.
    Column("default_permission", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("name"),
)

organization_members = Table(
    "organization_members",
    metadata,
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(), nullable=False),
    PrimaryKeyConstraint("organization_id", "user_id"),
    # A user's memberships are read at every token request.
    Index(None, "user_id"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", NAME, nullable=False),
    UniqueConstraint("organization_id", "name"),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", ID, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("team_id", "user_id"),
    Index(None, "user_id"),
)

# Settings of repositories known to the identity side; a repository without a row is treated
# as private until someone with write access pushes to it (or an admin sets it).
repository_settings = Table(
    "repository_settings",
    metadata,
    Column("repository", NAME, primary_key=True),
    Column("visibility", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("description", String(), nullable=True),
)

# Grants on repositories, by exact name or pattern, to a user or to a team.
repository_user_permissions = Table(
    "repository_user_permissions",
    metadata,
    Column("pattern", NAME, nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("permission", String(), nullable=False),
    PrimaryKeyConstraint("pattern", "user_id"),
    Index(None, "user_id"),
)

repository_team_permissions = Table(
    "repository_team_permissions",
    metadata,
    Column("pattern", NAME, nullable=False),
    Column("team_id", ID, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("permission", String(), nullable=False),
    PrimaryKeyConstraint("pattern", "team_id"),
    Index(None, "team_id"),
)

# Refresh tokens (OAuth2 ``access_type=offline``): only their SHA-256 is kept.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("service", String(), nullable=False),
    Column("client_id", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "user_id"),
)

# Personal access tokens (and robots' tokens): a random secret of which only the SHA-256 is
# kept, with the scopes that cap what it may do ("read,write,delete", a subset).
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(), nullable=False),
    Column("token_hash", String(), nullable=False),
    Column("scopes", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    UniqueConstraint("user_id", "name"),
    UniqueConstraint("token_hash"),
)

# Robot accounts: users (named ``organization+name``) that an organization owns.
robots = Table(
    "robots",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Index(None, "organization_id"),
)

# Failed logins counted in fixed windows, by key ("account:<name>@<address>", "address:<a>"),
# in the database so that every replica sees them.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(), primary_key=True),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("failures", Integer(), nullable=False),
    Index(None, "window_start"),
)

# What was done by whom: logins, token creation and revocation (and later content events).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("actor", String(), nullable=True),
    Column("client_address", String(), nullable=True),
    Column("action", String(), nullable=False),
    Column("outcome", String(), nullable=False),
    Column("repository", String(), nullable=True),
    Column("digest", String(), nullable=True),
    Column("tag", String(), nullable=True),
    Column("detail", String(), nullable=True),
    Index(None, "time"),
    Index(None, "actor", "time"),
)

# -- hub: what people do with repositories from the web (``dockyard.hub``) -------------------

# Who starred which repository; a repository's star count is counted here.
stars = Table(
    "stars",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("repository", NAME, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("user_id", "repository"),
    Index(None, "repository"),
)

# A repository's README, as Markdown; rendered (and sanitised) when shown.
readmes = Table(
    "readmes",
    metadata,
    Column("repository", NAME, primary_key=True),
    Column("markdown", String(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# A repository's webhooks: where a tagged push is POSTed (``dockyard.events.webhooks``); they
# go with the repository's settings row, so a repository created again later has none.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column(
        "repository",
        NAME,
        ForeignKey("repository_settings.repository", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(), nullable=False),
    Column("url", String(), nullable=False),
    # Kept as given: the HMAC of each payload needs it.
    Column("secret", String(), nullable=True),
    Column("active", Boolean(), nullable=False),
    Column("created_by", String(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("repository", "name"),
)

# One payload for one webhook: pending until delivered, or failed after the last attempt.
# ``event`` (the outbox event's id) keeps a re-delivered event from being queued twice.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("webhook_id", ID, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("payload", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("response_code", Integer(), nullable=True),
    CheckConstraint(
        "state IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_state"
    ),
    UniqueConstraint("webhook_id", "event"),
    Index(None, "state", "next_attempt_at"),
)

# Each try of a delivery: when, the HTTP status (None: no answer) or what went wrong.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "delivery_id",
        ID,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer(), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    Column("response_code", Integer(), nullable=True),
    Column("error", String(), nullable=True),
    Column("duration_ms", Integer(), nullable=False),
    PrimaryKeyConstraint("delivery_id", "attempt"),
)


# -- lifecycle: immutable tags, quotas, usage, retention (``dockyard.lifecycle``) -------------
# Triggers created by migration 0007 keep the usage tables right and refuse moving or deleting
# an immutable tag, whichever code writes ``repository_blobs`` or ``tags``.

# Tags (glob ``tag_pattern``) of repositories (glob ``repository_pattern``) that may not move
# or go once set. The regexes are the same patterns for PostgreSQL's trigger (SQLite's uses
# GLOB).
immutable_tag_rules = Table(
    "immutable_tag_rules",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("repository_pattern", NAME, nullable=False),
    Column("tag_pattern", NAME, nullable=False),
    Column("repository_regex", String(), nullable=False),
    Column("tag_regex", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("repository_pattern", "tag_pattern"),
)

# Which tags of matching repositories to keep; the others ``tag_pattern`` matches go.
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("repository_pattern", NAME, nullable=False),
    Column("tag_pattern", NAME, nullable=False),
    Column("keep_last", Integer(), nullable=True),
    # Seconds: keep tags pushed or pulled within this long.
    Column("keep_within", BigInteger(), nullable=True),
    Column("keep_pattern", NAME, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Storage limits of a namespace or a repository, in bytes of blobs.
quotas = Table(
    "quotas",
    metadata,
    Column("scope", String(), nullable=False),
    Column("name", NAME, nullable=False),
    Column("limit_bytes", BigInteger(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("scope", "name"),
    CheckConstraint("scope IN ('namespace', 'repository')", name="ck_quotas_scope"),
)

# Bytes admitted against a quota but not yet linked (a push between its check and its link).
quota_reservations = Table(
    "quota_reservations",
    metadata,
    Column("id", String(), primary_key=True),
    Column("namespace", NAME, nullable=False),
    Column("repository", NAME, nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index(None, "namespace"),
    Index(None, "repository"),
)

# Blob bytes linked in a namespace, each digest once (kept by triggers).
namespace_usage = Table(
    "namespace_usage",
    metadata,
    Column("namespace", NAME, primary_key=True),
    Column("bytes", BigInteger(), nullable=False),
    Column("blobs", BigInteger(), nullable=False),
)

# How many repositories of a namespace link a digest: it counts once while any does.
namespace_blobs = Table(
    "namespace_blobs",
    metadata,
    Column("namespace", NAME, nullable=False),
    Column("digest", String(), nullable=False),
    Column("links", BigInteger(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    PrimaryKeyConstraint("namespace", "digest"),
)

# Blob bytes linked in a repository (kept by triggers).
repository_usage = Table(
    "repository_usage",
    metadata,
    Column("repository_id", ID, primary_key=True, autoincrement=False),
    Column("bytes", BigInteger(), nullable=False),
    Column("blobs", BigInteger(), nullable=False),
)

# Pulls of a tag (manifest GET or HEAD by tag), flushed in batches from memory.
tag_pulls = Table(
    "tag_pulls",
    metadata,
    Column("repository", NAME, nullable=False),
    Column("tag", NAME, nullable=False),
    Column("pulls", BigInteger(), nullable=False),
    Column("last_pulled_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("repository", "tag"),
)
