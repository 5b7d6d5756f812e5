"""``LifecycleService``: the one entry point for managing lifecycle settings and reading
usage, for the CLI and the management API alike.

Every method is a transaction (or a read) on the metadata database; invalid input raises
:class:`LifecycleError` (a ``ValueError``) with a message fit for the client, and unknown
ids or names give ``False``/``None`` rather than raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Delete, Table, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.lifecycle.immutable import ImmutableRule
from dockyard.lifecycle.patterns import PatternError, to_regex, validate
from dockyard.lifecycle.quotas import NAMESPACE, REPOSITORY, Quota
from dockyard.lifecycle.retention import (
    Changed,
    RetentionPolicy,
    RetentionReport,
    apply_retention,
)
from dockyard.lifecycle.usage import NamespaceUsage, read_usage
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import immutable_tag_rules, quotas, retention_policies
from dockyard.metadata.sql_common import dialect_insert

__all__ = ["LifecycleError", "LifecycleService"]

# Larger than any store, small enough for a signed 64-bit column.
_MAX_LIMIT = 1 << 62


class LifecycleError(ValueError):
    """Input the service refuses (a bad pattern, a negative limit, a policy keeping
    nothing)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _pattern(value: str, what: str) -> str:
    try:
        return validate(value, what)
    except PatternError as error:
        raise LifecycleError(str(error)) from None


def _insert_returning_id(conn: Connection, table: Table, values: dict[str, object]) -> int:
    new_id = conn.execute(table.insert().values(values).returning(table.c.id)).scalar_one()
    return int(new_id)


def _tx_set_quota(conn: Connection, scope: str, name: str, limit: int, now: datetime) -> None:
    insert = dialect_insert(conn)(quotas)
    statement = insert.values(scope=scope, name=name, limit_bytes=limit, created_at=now)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["scope", "name"], set_={"limit_bytes": limit}
        )
    )


def _tx_delete(conn: Connection, statement: Delete) -> bool:
    return bool(conn.execute(statement).rowcount)


class LifecycleService:
    """Immutable tag rules, quotas, retention policies and usage, over one database."""

    def __init__(self, database: Database, changed: Changed | None = None) -> None:
        self._db = database
        # Told of each repository whose tags retention removed (to drop cached answers).
        self._changed = changed

    @property
    def database(self) -> Database:
        """The metadata database it works on (for readers of related facts)."""
        return self._db

    # -- immutable tags --------------------------------------------------------------------
    async def add_immutable_rule(self, repository_pattern: str, tag_pattern: str) -> ImmutableRule:
        """Protect tags matching ``tag_pattern`` in repositories matching
        ``repository_pattern`` (``library/*`` is a namespace, ``*`` every repository)."""
        repository_pattern = _pattern(repository_pattern, "repository pattern")
        tag_pattern = _pattern(tag_pattern, "tag pattern")
        now = _now()
        values: dict[str, object] = {
            "repository_pattern": repository_pattern,
            "tag_pattern": tag_pattern,
            "repository_regex": to_regex(repository_pattern),
            "tag_regex": to_regex(tag_pattern),
            "created_at": now,
        }
        try:
            rule_id = await self._db.transaction(_insert_returning_id, immutable_tag_rules, values)
        except IntegrityError:
            raise LifecycleError(
                f"an immutability rule for {repository_pattern} {tag_pattern} exists already"
            ) from None
        return ImmutableRule(rule_id, repository_pattern, tag_pattern, now)

    async def list_immutable_rules(self) -> list[ImmutableRule]:
        t = immutable_tag_rules.c
        rows = await self._db.read(
            select(t.id, t.repository_pattern, t.tag_pattern, t.created_at).order_by(t.id)
        )
        return [
            ImmutableRule(r.id, r.repository_pattern, r.tag_pattern, r.created_at) for r in rows
        ]

    async def remove_immutable_rule(self, rule_id: int) -> bool:
        statement = delete(immutable_tag_rules).where(immutable_tag_rules.c.id == rule_id)
        return await self._db.transaction(_tx_delete, statement)

    # -- quotas ----------------------------------------------------------------------------
    async def set_quota(self, scope: str, name: str, limit_bytes: int) -> Quota:
        """Limit the blob bytes of a namespace or a repository (replacing its limit). A lower
        limit than the current usage refuses new blobs; nothing stored is removed."""
        if scope not in (NAMESPACE, REPOSITORY):
            raise LifecycleError(f"quota scope must be {NAMESPACE} or {REPOSITORY}, not {scope}")
        if scope == NAMESPACE and "/" in name:
            raise LifecycleError(f"a namespace has no '/': {name!r}")
        name = _pattern(name, scope)
        if "*" in name or "?" in name:
            raise LifecycleError(f"a quota names one {scope}, not a pattern: {name!r}")
        if not 0 <= limit_bytes <= _MAX_LIMIT:
            raise LifecycleError(f"quota limit must be between 0 and {_MAX_LIMIT} bytes")
        now = _now()
        await self._db.transaction(_tx_set_quota, scope, name, limit_bytes, now)
        rows = await self._db.read(
            select(quotas.c.created_at).where(quotas.c.scope == scope, quotas.c.name == name)
        )
        return Quota(scope, name, limit_bytes, rows[0].created_at if rows else now)

    async def list_quotas(self) -> list[Quota]:
        q = quotas.c
        rows = await self._db.read(
            select(q.scope, q.name, q.limit_bytes, q.created_at).order_by(q.scope, q.name)
        )
        return [Quota(r.scope, r.name, r.limit_bytes, r.created_at) for r in rows]

    async def remove_quota(self, scope: str, name: str) -> bool:
        statement = delete(quotas).where(quotas.c.scope == scope, quotas.c.name == name)
        return await self._db.transaction(_tx_delete, statement)

    # -- retention -------------------------------------------------------------------------
    async def add_retention_policy(
        self,
        repository_pattern: str,
        tag_pattern: str = "*",
        keep_last: int | None = None,
        keep_within: float | None = None,
        keep_pattern: str | None = None,
    ) -> RetentionPolicy:
        """Keep, of the tags matching ``tag_pattern`` in repositories matching
        ``repository_pattern``, the ``keep_last`` most recently pushed, those pushed or
        pulled within ``keep_within`` seconds, and those matching ``keep_pattern``; remove
        the rest when retention runs. At least one of the first two must be given."""
        repository_pattern = _pattern(repository_pattern, "repository pattern")
        tag_pattern = _pattern(tag_pattern, "tag pattern")
        if keep_pattern is not None:
            keep_pattern = _pattern(keep_pattern, "keep pattern")
        if keep_last is None and keep_within is None:
            raise LifecycleError(
                "a retention policy needs keep-last or keep-within (else it would remove "
                "every tag it matches)"
            )
        if keep_last is not None and keep_last < 1:
            raise LifecycleError("keep-last must be at least 1")
        if keep_within is not None and keep_within <= 0:
            raise LifecycleError("keep-within must be a positive duration")
        now = _now()
        within = None if keep_within is None else int(keep_within)
        values: dict[str, object] = {
            "repository_pattern": repository_pattern,
            "tag_pattern": tag_pattern,
            "keep_last": keep_last,
            "keep_within": within,
            "keep_pattern": keep_pattern,
            "created_at": now,
        }
        policy_id = await self._db.transaction(_insert_returning_id, retention_policies, values)
        return RetentionPolicy(
            policy_id,
            repository_pattern,
            tag_pattern,
            keep_last,
            None if within is None else float(within),
            keep_pattern,
            now,
        )

    async def list_retention_policies(self) -> list[RetentionPolicy]:
        p = retention_policies.c
        rows = await self._db.read(select(retention_policies).order_by(p.id))
        return [
            RetentionPolicy(
                r.id,
                r.repository_pattern,
                r.tag_pattern,
                r.keep_last,
                None if r.keep_within is None else float(r.keep_within),
                r.keep_pattern,
                r.created_at,
            )
            for r in rows
        ]

    async def remove_retention_policy(self, policy_id: int) -> bool:
        statement = delete(retention_policies).where(retention_policies.c.id == policy_id)
        return await self._db.transaction(_tx_delete, statement)

    async def run_retention(
        self, dry_run: bool = False, policies: Sequence[RetentionPolicy] | None = None
    ) -> RetentionReport:
        """Apply the stored policies (or ``policies``) now; a dry run changes nothing."""
        if policies is None:
            policies = await self.list_retention_policies()
        immutable = await self.list_immutable_rules()
        return await apply_retention(self._db, policies, immutable, dry_run, self._changed)

    # -- usage -----------------------------------------------------------------------------
    async def usage(
        self,
        namespace: str | None = None,
        repository: str | None = None,
        with_tags: bool = False,
    ) -> list[NamespaceUsage]:
        """Blob bytes per namespace and repository (each digest counted once per
        namespace), their quotas, and with ``with_tags`` the tags' pulls."""
        return await read_usage(self._db, namespace, repository, with_tags)
