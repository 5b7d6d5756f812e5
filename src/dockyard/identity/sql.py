"""``IdentityStore`` on SQLAlchemy Core, over the metadata's ``Database`` (SQLite or
PostgreSQL), in the tables ``dockyard.metadata.schema`` declares.

Each write is one transaction, written as a plain function of a sync ``Connection`` (the
``tx_*`` functions of the ``sql_*`` modules beside this one, one module per concept) that the
``Database`` runs. A name is claimed in ``namespaces`` with ``ON CONFLICT DO NOTHING`` first,
so that two replicas creating the same user, or a user and an organization of the same name,
cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from dockyard.identity import (
    sql_audit,
    sql_login_failures,
    sql_organizations,
    sql_permissions,
    sql_policy,
    sql_repositories,
    sql_robots,
    sql_teams,
    sql_tokens,
    sql_users,
)
from dockyard.identity.base import (
    AccessToken,
    AuditEvent,
    AuditFilter,
    AuditRecord,
    Credentials,
    Namespace,
    Organization,
    OrganizationMember,
    Permission,
    PermissionGrant,
    Principal,
    RepositorySettings,
    Role,
    Subject,
    TokenScope,
    TokenUse,
    User,
    Visibility,
    check_name,
)
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import repository_settings, users

__all__ = ["SqlIdentityStore"]


class SqlIdentityStore:
    """An ``IdentityStore`` over a ``Database`` it shares with the metadata store (which
    owns and closes it)."""

    def __init__(self, database: Database) -> None:
        if database.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect: {database.dialect}")
        self._db = database

    @property
    def database(self) -> Database:
        """The database it shares with the metadata store."""
        return self._db

    # -- users -------------------------------------------------------------------------------
    async def create_user(
        self, name: str, password_hash: str | None, *, is_admin: bool = False
    ) -> User:
        return await self._db.transaction(
            sql_users.tx_create_user, check_name(name), password_hash, is_admin
        )

    async def get_user(self, name: str) -> User | None:
        rows = await self._db.read(select(*sql_users.COLUMNS).where(users.c.name == name))
        return sql_users.user(rows[0]) if rows else None

    async def credentials(self, name: str) -> Credentials | None:
        rows = await self._db.read(
            select(*sql_users.COLUMNS, users.c.password_hash).where(users.c.name == name)
        )
        if not rows:
            return None
        return Credentials(user=sql_users.user(rows[0]), password_hash=rows[0].password_hash)

    async def list_users(self) -> list[User]:
        rows = await self._db.read(select(*sql_users.COLUMNS).order_by(users.c.name))
        return [sql_users.user(row) for row in rows]

    async def set_password(self, name: str, password_hash: str | None) -> None:
        await self._db.transaction(sql_users.tx_update_user, name, {"password_hash": password_hash})

    async def set_admin(self, name: str, is_admin: bool) -> None:
        await self._db.transaction(sql_users.tx_update_user, name, {"is_admin": is_admin})

    async def set_disabled(self, name: str, disabled: bool) -> None:
        await self._db.transaction(sql_users.tx_disable, name, disabled)

    # -- organizations and teams -------------------------------------------------------------
    async def create_organization(
        self, name: str, *, owner: str, default_permission: Permission = Permission.NONE
    ) -> Organization:
        return await self._db.transaction(
            sql_organizations.tx_create_organization, check_name(name), owner, default_permission
        )

    async def get_organization(self, name: str) -> Organization | None:
        rows = await self._db.read(sql_organizations.organization_query(name))
        return sql_organizations.organization(rows[0]) if rows else None

    async def set_default_permission(self, organization: str, permission: Permission) -> None:
        await self._db.transaction(
            sql_organizations.tx_set_default_permission, organization, permission
        )

    async def set_member(self, organization: str, user: str, role: Role) -> None:
        await self._db.transaction(sql_organizations.tx_set_member, organization, user, role)

    async def remove_member(self, organization: str, user: str) -> None:
        await self._db.transaction(sql_organizations.tx_remove_member, organization, user)

    async def members(self, organization: str) -> list[OrganizationMember]:
        rows = await self._db.read(sql_organizations.members_query(organization))
        return [sql_organizations.member(row) for row in rows]

    async def create_team(self, organization: str, team: str) -> None:
        await self._db.transaction(sql_teams.tx_create_team, organization, check_name(team))

    async def add_team_member(self, organization: str, team: str, user: str) -> None:
        await self._db.transaction(sql_teams.tx_add_team_member, organization, team, user)

    async def remove_team_member(self, organization: str, team: str, user: str) -> None:
        await self._db.transaction(sql_teams.tx_remove_team_member, organization, team, user)

    async def team_members(self, organization: str, team: str) -> list[str]:
        rows = await self._db.read(sql_teams.members_query(organization, team))
        return [row.name for row in rows]

    async def teams(self, organization: str) -> list[str]:
        rows = await self._db.read(sql_teams.teams_query(organization))
        return [row.name for row in rows]

    # -- repositories ------------------------------------------------------------------------
    async def grant(self, pattern: str, subject: Subject, permission: Permission) -> None:
        await self._db.transaction(sql_permissions.tx_grant, pattern, subject, permission)

    async def grants(self) -> list[PermissionGrant]:
        by_user = await self._db.read(sql_permissions.BY_USER)
        by_team = await self._db.read(sql_permissions.BY_TEAM)
        found = [sql_permissions.user_grant(row) for row in by_user] + [
            sql_permissions.team_grant(row) for row in by_team
        ]
        return sorted(found, key=sql_permissions.order)

    async def set_visibility(self, repository: str, visibility: Visibility) -> None:
        await self._db.transaction(sql_permissions.tx_set_visibility, repository, visibility)

    async def claim_repository(self, repository: str, visibility: Visibility) -> Visibility:
        return await self._db.transaction(
            sql_permissions.tx_claim_repository, repository, visibility
        )

    async def visibilities(self, repositories: Sequence[str]) -> dict[str, Visibility]:
        if not repositories:
            return {}
        rows = await self._db.read(sql_permissions.visibilities_query(repositories))
        return {row.repository: Visibility(row.visibility) for row in rows}

    async def create_repository(
        self, repository: str, visibility: Visibility, description: str | None
    ) -> RepositorySettings:
        return await self._db.transaction(
            sql_repositories.tx_create_repository, repository, visibility, description
        )

    async def repository(self, repository: str) -> RepositorySettings | None:
        rows = await self._db.read(
            select(*sql_repositories.COLUMNS).where(repository_settings.c.repository == repository)
        )
        return sql_repositories.settings(rows[0]) if rows else None

    async def repositories(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RepositorySettings]:
        query = select(*sql_repositories.COLUMNS).order_by(repository_settings.c.repository)
        if after is not None:
            query = query.where(repository_settings.c.repository > after)
        if limit is not None:
            query = query.limit(max(limit, 0))
        return [sql_repositories.settings(row) for row in await self._db.read(query)]

    async def update_repository(
        self,
        repository: str,
        *,
        visibility: Visibility | None = None,
        description: str | None = None,
    ) -> RepositorySettings:
        return await self._db.transaction(
            sql_repositories.tx_update_repository, repository, visibility, description
        )

    async def forget_repository(self, repository: str) -> None:
        await self._db.transaction(sql_repositories.tx_forget_repository, repository)

    # -- what the policy reads ---------------------------------------------------------------
    async def principal(self, user: str) -> Principal | None:
        # Three reads, not one transaction: on SQLite a transaction takes the write lock.
        # A role or grant changed between them is seen at the next token request.
        found = await self._db.read(sql_policy.PRINCIPAL, {"name": user})
        if not found:
            return None
        roles = await self._db.read(sql_policy.ROLES, {"name": user})
        grants = await self._db.read(sql_policy.GRANTS, {"name": user})
        return sql_policy.principal(user, found[0], roles, grants)

    async def namespaces(self, names: Sequence[str]) -> dict[str, Namespace]:
        if not names:
            return {}
        rows = await self._db.read(sql_policy.namespaces_query(names))
        return {row.name: sql_policy.namespace(row) for row in rows}

    # -- refresh tokens ----------------------------------------------------------------------
    async def add_refresh_token(
        self, token_hash: str, user: str, service: str, client_id: str
    ) -> None:
        await self._db.transaction(
            sql_tokens.tx_add_refresh_token, token_hash, user, service, client_id
        )

    async def refresh_token_user(self, token_hash: str, service: str) -> str | None:
        rows = await self._db.read(sql_tokens.refresh_token_user_query(token_hash, service))
        return str(rows[0].name) if rows else None

    async def revoke_refresh_tokens(self, user: str) -> int:
        return await self._db.transaction(sql_tokens.tx_revoke_refresh_tokens, user)

    # -- access tokens -----------------------------------------------------------------------
    async def create_access_token(
        self,
        user: str,
        name: str,
        token_hash: str,
        scopes: frozenset[TokenScope],
        expires_at: datetime | None,
    ) -> AccessToken:
        if not scopes:
            raise ValueError("a token needs at least one scope")
        return await self._db.transaction(
            sql_tokens.tx_create_access_token,
            user,
            check_name(name),
            token_hash,
            scopes,
            expires_at,
        )

    async def access_tokens(self, user: str) -> list[AccessToken]:
        rows = await self._db.read(sql_tokens.tokens_query(user))
        return [sql_tokens.access_token(user, row) for row in rows]

    async def revoke_access_token(self, user: str, name: str) -> None:
        await self._db.transaction(sql_tokens.tx_revoke_access_token, user, name)

    async def use_access_token(
        self, token_hash: str, now: datetime, *, touch_after: timedelta = timedelta(minutes=1)
    ) -> TokenUse | None:
        rows = await self._db.read(sql_tokens.use_query(token_hash))
        if not rows:
            return None
        row = rows[0]
        if row.expires_at is not None and row.expires_at <= now:
            return None
        stale = now - touch_after
        if row.last_used_at is None or row.last_used_at < stale:
            await self._db.transaction(sql_tokens.tx_touch_access_token, int(row.id), now, stale)
        return TokenUse(user=row.user, token=row.name, scopes=sql_tokens.parse_scopes(row.scopes))

    # -- robots ------------------------------------------------------------------------------
    async def create_robot(self, organization: str, name: str) -> User:
        return await self._db.transaction(
            sql_robots.tx_create_robot, organization, check_name(name)
        )

    async def robots(self, organization: str) -> list[User]:
        rows = await self._db.read(sql_robots.robots_query(organization))
        return [sql_users.user(row) for row in rows]

    async def delete_robot(self, organization: str, name: str) -> None:
        await self._db.transaction(sql_robots.tx_delete_robot, organization, name)

    # -- failed logins -----------------------------------------------------------------------
    async def login_failures(self, keys: Sequence[str]) -> dict[str, tuple[datetime, int]]:
        if not keys:
            return {}
        rows = await self._db.read(sql_login_failures.failures_query(keys))
        return {row.key: (row.window_start, int(row.failures)) for row in rows}

    async def record_login_failure(
        self, keys: Sequence[str], now: datetime, window: timedelta
    ) -> None:
        if keys:
            await self._db.transaction(sql_login_failures.tx_record, keys, now, window)

    async def clear_login_failures(self, keys: Sequence[str]) -> None:
        if keys:
            await self._db.transaction(sql_login_failures.tx_clear, keys)

    # -- audit -------------------------------------------------------------------------------
    async def add_audit_event(self, event: AuditEvent) -> None:
        await self._db.transaction(sql_audit.tx_add_event, event)

    async def audit_events(
        self, *, since: datetime | None = None, actor: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        rows = await self._db.read(sql_audit.events_query(since, actor, limit))
        return [sql_audit.event(row) for row in reversed(rows)]

    async def audit_page(
        self, where: AuditFilter, *, after: int | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        rows = await self._db.read(sql_audit.page_query(where, after, limit))
        return [sql_audit.record(row) for row in rows]

    async def purge_audit(self, before: datetime) -> int:
        return await self._db.transaction(sql_audit.tx_purge, before)
