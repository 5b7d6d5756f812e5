"""``IdentityStore`` on SQLAlchemy Core, over the metadata's ``Database`` (SQLite or
PostgreSQL), in the tables ``dockyard.metadata.schema`` declares.

Each write is one transaction, written as a plain function of a sync ``Connection`` (the
``_tx_*`` functions) that the ``Database`` runs. A name is claimed in ``namespaces`` with
``ON CONFLICT DO NOTHING`` first, so that two replicas creating the same user, or a user and
an organization of the same name, cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dockyard.identity import sql_audit, sql_repositories
from dockyard.identity.base import (
    AccessToken,
    AlreadyExists,
    AuditEvent,
    AuditFilter,
    AuditRecord,
    Credentials,
    Namespace,
    NamespaceKind,
    NotFound,
    Organization,
    OrganizationMember,
    Permission,
    PermissionGrant,
    Principal,
    RepositorySettings,
    Role,
    Subject,
    TeamSubject,
    TokenScope,
    TokenUse,
    User,
    UserSubject,
    Visibility,
    check_name,
    robot_name,
)
from dockyard.metadata.engine import Database
from dockyard.metadata.schema import (
    UtcDateTime,
    access_tokens,
    audit_events,
    login_failures,
    namespaces,
    organization_members,
    organizations,
    refresh_tokens,
    repository_settings,
    repository_team_permissions,
    repository_user_permissions,
    robots,
    team_members,
    teams,
    users,
)

__all__ = ["SqlIdentityStore"]


def _now() -> datetime:
    return datetime.now(UTC)


def _upsert(connection: Connection) -> Any:
    """The dialect's ``insert`` (``ON CONFLICT`` is dialect-specific)."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _user(row: Any) -> User:
    return User(
        name=row.name,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


_USER_COLUMNS = (users.c.name, users.c.is_admin, users.c.disabled, users.c.created_at)


def _user_id(connection: Connection, name: str) -> int:
    found = connection.execute(select(users.c.id).where(users.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no user {name!r}")
    return int(found)


def _organization_id(connection: Connection, name: str) -> int:
    found = connection.execute(
        select(organizations.c.id).where(organizations.c.name == name)
    ).scalar()
    if found is None:
        raise NotFound(f"no organization {name!r}")
    return int(found)


def _team_id(connection: Connection, organization: str, team: str) -> int:
    found = connection.execute(
        select(teams.c.id).where(
            teams.c.organization_id == _organization_id(connection, organization),
            teams.c.name == team,
        )
    ).scalar()
    if found is None:
        raise NotFound(f"no team {team!r} in organization {organization!r}")
    return int(found)


def _claim_namespace(connection: Connection, name: str, kind: NamespaceKind) -> datetime:
    now = _now()
    claimed = connection.execute(
        _upsert(connection)(namespaces)
        .values(name=name, kind=kind.value, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(namespaces.c.name)
    ).first()
    if claimed is None:
        raise AlreadyExists(f"the name {name!r} is taken by a user or an organization")
    return now


# -- transactions -------------------------------------------------------------------------------


def _tx_create_user(
    connection: Connection, name: str, password_hash: str | None, is_admin: bool
) -> User:
    now = _claim_namespace(connection, name, NamespaceKind.USER)
    connection.execute(
        insert(users).values(
            name=name,
            password_hash=password_hash,
            is_admin=is_admin,
            disabled=False,
            created_at=now,
        )
    )
    return User(name=name, is_admin=is_admin, disabled=False, created_at=now)


def _tx_update_user(connection: Connection, name: str, values: dict[str, Any]) -> None:
    result = connection.execute(update(users).where(users.c.name == name).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no user {name!r}")


def _tx_disable(connection: Connection, name: str, disabled: bool) -> None:
    _tx_update_user(connection, name, {"disabled": disabled})
    if disabled:
        connection.execute(
            delete(refresh_tokens).where(refresh_tokens.c.user_id == _user_id(connection, name))
        )


def _tx_create_organization(
    connection: Connection, name: str, owner: str, default_permission: Permission
) -> Organization:
    owner_id = _user_id(connection, owner)
    now = _claim_namespace(connection, name, NamespaceKind.ORGANIZATION)
    organization_id = connection.execute(
        insert(organizations)
        .values(name=name, default_permission=default_permission.label, created_at=now)
        .returning(organizations.c.id)
    ).scalar_one()
    connection.execute(
        insert(organization_members).values(
            organization_id=organization_id, user_id=owner_id, role=Role.OWNER.value
        )
    )
    return Organization(name=name, default_permission=default_permission, created_at=now)


def _tx_set_default_permission(
    connection: Connection, organization: str, permission: Permission
) -> None:
    result = connection.execute(
        update(organizations)
        .where(organizations.c.name == organization)
        .values(default_permission=permission.label)
    )
    if result.rowcount == 0:
        raise NotFound(f"no organization {organization!r}")


def _tx_set_member(connection: Connection, organization: str, user: str, role: Role) -> None:
    organization_id = _organization_id(connection, organization)
    user_id = _user_id(connection, user)
    connection.execute(
        _upsert(connection)(organization_members)
        .values(organization_id=organization_id, user_id=user_id, role=role.value)
        .on_conflict_do_update(
            index_elements=["organization_id", "user_id"], set_={"role": role.value}
        )
    )


def _tx_remove_member(connection: Connection, organization: str, user: str) -> None:
    organization_id = _organization_id(connection, organization)
    user_id = _user_id(connection, user)
    team_ids = select(teams.c.id).where(teams.c.organization_id == organization_id)
    connection.execute(
        delete(team_members).where(
            team_members.c.user_id == user_id, team_members.c.team_id.in_(team_ids)
        )
    )
    connection.execute(
        delete(organization_members).where(
            organization_members.c.organization_id == organization_id,
            organization_members.c.user_id == user_id,
        )
    )


def _tx_create_team(connection: Connection, organization: str, team: str) -> None:
    organization_id = _organization_id(connection, organization)
    created = connection.execute(
        _upsert(connection)(teams)
        .values(organization_id=organization_id, name=team)
        .on_conflict_do_nothing(index_elements=["organization_id", "name"])
        .returning(teams.c.id)
    ).first()
    if created is None:
        raise AlreadyExists(f"team {team!r} exists in organization {organization!r}")


def _tx_add_team_member(connection: Connection, organization: str, team: str, user: str) -> None:
    team_id = _team_id(connection, organization, team)
    user_id = _user_id(connection, user)
    member = connection.execute(
        select(organization_members.c.role).where(
            organization_members.c.organization_id == _organization_id(connection, organization),
            organization_members.c.user_id == user_id,
        )
    ).first()
    if member is None:
        raise NotFound(f"{user!r} is not a member of organization {organization!r}")
    connection.execute(
        _upsert(connection)(team_members)
        .values(team_id=team_id, user_id=user_id)
        .on_conflict_do_nothing(index_elements=["team_id", "user_id"])
    )


def _tx_remove_team_member(connection: Connection, organization: str, team: str, user: str) -> None:
    connection.execute(
        delete(team_members).where(
            team_members.c.team_id == _team_id(connection, organization, team),
            team_members.c.user_id == _user_id(connection, user),
        )
    )


def _tx_grant(
    connection: Connection, pattern: str, subject: Subject, permission: Permission
) -> None:
    if isinstance(subject, UserSubject):
        table, column = repository_user_permissions, "user_id"
        subject_id = _user_id(connection, subject.name)
    else:
        table, column = repository_team_permissions, "team_id"
        subject_id = _team_id(connection, subject.organization, subject.team)
    if permission is Permission.NONE:
        connection.execute(
            delete(table).where(table.c.pattern == pattern, table.c[column] == subject_id)
        )
        return
    connection.execute(
        _upsert(connection)(table)
        .values(pattern=pattern, permission=permission.label, **{column: subject_id})
        .on_conflict_do_update(
            index_elements=["pattern", column], set_={"permission": permission.label}
        )
    )


def _tx_set_visibility(connection: Connection, repository: str, visibility: Visibility) -> None:
    connection.execute(
        _upsert(connection)(repository_settings)
        .values(repository=repository, visibility=visibility.value, created_at=_now())
        .on_conflict_do_update(index_elements=["repository"], set_={"visibility": visibility.value})
    )


def _tx_claim_repository(
    connection: Connection, repository: str, visibility: Visibility
) -> Visibility:
    connection.execute(
        _upsert(connection)(repository_settings)
        .values(repository=repository, visibility=visibility.value, created_at=_now())
        .on_conflict_do_nothing(index_elements=["repository"])
    )
    current = connection.execute(
        select(repository_settings.c.visibility).where(
            repository_settings.c.repository == repository
        )
    ).scalar_one()
    return Visibility(current)


# The statements read at every token request, built once (see metadata/sql.py on why).
_PRINCIPAL = select(users.c.is_admin).where(users.c.name == bindparam("name"), ~users.c.disabled)
_ROLES = (
    select(organizations.c.name, organization_members.c.role)
    .select_from(
        organization_members.join(
            organizations, organizations.c.id == organization_members.c.organization_id
        ).join(users, users.c.id == organization_members.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
)
_GRANTS = (
    select(repository_user_permissions.c.pattern, repository_user_permissions.c.permission)
    .select_from(
        repository_user_permissions.join(users, users.c.id == repository_user_permissions.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
).union_all(
    select(repository_team_permissions.c.pattern, repository_team_permissions.c.permission)
    .select_from(
        repository_team_permissions.join(
            team_members, team_members.c.team_id == repository_team_permissions.c.team_id
        ).join(users, users.c.id == team_members.c.user_id)
    )
    .where(users.c.name == bindparam("name"))
)


def _tx_add_refresh_token(
    connection: Connection, token_hash: str, user: str, service: str, client_id: str
) -> None:
    connection.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash,
            user_id=_user_id(connection, user),
            service=service,
            client_id=client_id,
            created_at=_now(),
        )
    )


def _tx_revoke_refresh_tokens(connection: Connection, user: str) -> int:
    result = connection.execute(
        delete(refresh_tokens).where(refresh_tokens.c.user_id == _user_id(connection, user))
    )
    return int(result.rowcount)


def _scopes_text(scopes: frozenset[TokenScope]) -> str:
    return ",".join(sorted(scope.value for scope in scopes))


def _scopes(text: str) -> frozenset[TokenScope]:
    return frozenset(TokenScope(part) for part in text.split(",") if part)


def _access_token(user: str, row: Any) -> AccessToken:
    return AccessToken(
        user=user,
        name=row.name,
        scopes=_scopes(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


def _tx_create_access_token(
    connection: Connection,
    user: str,
    name: str,
    token_hash: str,
    scopes: frozenset[TokenScope],
    expires_at: datetime | None,
) -> AccessToken:
    user_id = _user_id(connection, user)
    now = _now()
    created = connection.execute(
        _upsert(connection)(access_tokens)
        .values(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            scopes=_scopes_text(scopes),
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "name"])
        .returning(access_tokens.c.id)
    ).first()
    if created is None:
        raise AlreadyExists(f"user {user!r} has a token named {name!r}")
    return AccessToken(user, name, scopes, now, expires_at, None)


def _tx_revoke_access_token(connection: Connection, user: str, name: str) -> None:
    result = connection.execute(
        delete(access_tokens).where(
            access_tokens.c.user_id == _user_id(connection, user), access_tokens.c.name == name
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"user {user!r} has no token named {name!r}")


def _tx_touch_access_token(
    connection: Connection, token_id: int, now: datetime, stale: datetime
) -> None:
    # The condition again, so that of replicas racing only one writes.
    connection.execute(
        update(access_tokens)
        .where(
            access_tokens.c.id == token_id,
            or_(access_tokens.c.last_used_at.is_(None), access_tokens.c.last_used_at < stale),
        )
        .values(last_used_at=now)
    )


def _tx_create_robot(connection: Connection, organization: str, name: str) -> User:
    organization_id = _organization_id(connection, organization)
    full = robot_name(organization, name)
    now = _claim_namespace(connection, full, NamespaceKind.USER)
    user_id = connection.execute(
        insert(users)
        .values(name=full, password_hash=None, is_admin=False, disabled=False, created_at=now)
        .returning(users.c.id)
    ).scalar_one()
    connection.execute(insert(robots).values(user_id=user_id, organization_id=organization_id))
    return User(name=full, is_admin=False, disabled=False, created_at=now)


def _tx_delete_robot(connection: Connection, organization: str, name: str) -> None:
    full = robot_name(organization, name)
    owned = connection.execute(
        select(users.c.id)
        .select_from(users.join(robots, robots.c.user_id == users.c.id))
        .where(
            users.c.name == full,
            robots.c.organization_id == _organization_id(connection, organization),
        )
    ).scalar()
    if owned is None:
        raise NotFound(f"organization {organization!r} has no robot {name!r}")
    # Tokens, memberships and grants go with the user (ON DELETE CASCADE).
    connection.execute(delete(users).where(users.c.id == owned))
    connection.execute(delete(namespaces).where(namespaces.c.name == full))


def _tx_record_login_failure(
    connection: Connection, keys: Sequence[str], now: datetime, window: timedelta
) -> None:
    expired = login_failures.c.window_start <= now - window
    started = literal(now, UtcDateTime())
    for key in sorted(set(keys)):
        # One statement, so that failures counted at once on several replicas all count.
        connection.execute(
            _upsert(connection)(login_failures)
            .values(key=key, window_start=now, failures=1)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "window_start": case((expired, started), else_=login_failures.c.window_start),
                    "failures": case((expired, 1), else_=login_failures.c.failures + 1),
                },
            )
        )


def _tx_clear_login_failures(connection: Connection, keys: Sequence[str]) -> None:
    connection.execute(delete(login_failures).where(login_failures.c.key.in_(list(keys))))


def _tx_add_audit_event(connection: Connection, event: AuditEvent) -> None:
    connection.execute(
        insert(audit_events).values({name: getattr(event, name) for name in sql_audit.FIELDS})
    )


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
            _tx_create_user, check_name(name), password_hash, is_admin
        )

    async def get_user(self, name: str) -> User | None:
        rows = await self._db.read(select(*_USER_COLUMNS).where(users.c.name == name))
        return _user(rows[0]) if rows else None

    async def credentials(self, name: str) -> Credentials | None:
        rows = await self._db.read(
            select(*_USER_COLUMNS, users.c.password_hash).where(users.c.name == name)
        )
        if not rows:
            return None
        return Credentials(user=_user(rows[0]), password_hash=rows[0].password_hash)

    async def list_users(self) -> list[User]:
        rows = await self._db.read(select(*_USER_COLUMNS).order_by(users.c.name))
        return [_user(row) for row in rows]

    async def set_password(self, name: str, password_hash: str | None) -> None:
        await self._db.transaction(_tx_update_user, name, {"password_hash": password_hash})

    async def set_admin(self, name: str, is_admin: bool) -> None:
        await self._db.transaction(_tx_update_user, name, {"is_admin": is_admin})

    async def set_disabled(self, name: str, disabled: bool) -> None:
        await self._db.transaction(_tx_disable, name, disabled)

    # -- organizations and teams -------------------------------------------------------------
    async def create_organization(
        self, name: str, *, owner: str, default_permission: Permission = Permission.NONE
    ) -> Organization:
        return await self._db.transaction(
            _tx_create_organization, check_name(name), owner, default_permission
        )

    async def get_organization(self, name: str) -> Organization | None:
        rows = await self._db.read(
            select(
                organizations.c.name,
                organizations.c.default_permission,
                organizations.c.created_at,
            ).where(organizations.c.name == name)
        )
        if not rows:
            return None
        row = rows[0]
        return Organization(
            name=row.name,
            default_permission=Permission.parse(row.default_permission),
            created_at=row.created_at,
        )

    async def set_default_permission(self, organization: str, permission: Permission) -> None:
        await self._db.transaction(_tx_set_default_permission, organization, permission)

    async def set_member(self, organization: str, user: str, role: Role) -> None:
        await self._db.transaction(_tx_set_member, organization, user, role)

    async def remove_member(self, organization: str, user: str) -> None:
        await self._db.transaction(_tx_remove_member, organization, user)

    async def members(self, organization: str) -> list[OrganizationMember]:
        rows = await self._db.read(
            select(users.c.name, organization_members.c.role)
            .select_from(
                organization_members.join(users, users.c.id == organization_members.c.user_id).join(
                    organizations, organizations.c.id == organization_members.c.organization_id
                )
            )
            .where(organizations.c.name == organization)
            .order_by(users.c.name)
        )
        return [OrganizationMember(user=row.name, role=Role(row.role)) for row in rows]

    async def create_team(self, organization: str, team: str) -> None:
        await self._db.transaction(_tx_create_team, organization, check_name(team))

    async def add_team_member(self, organization: str, team: str, user: str) -> None:
        await self._db.transaction(_tx_add_team_member, organization, team, user)

    async def remove_team_member(self, organization: str, team: str, user: str) -> None:
        await self._db.transaction(_tx_remove_team_member, organization, team, user)

    async def team_members(self, organization: str, team: str) -> list[str]:
        rows = await self._db.read(
            select(users.c.name)
            .select_from(
                team_members.join(users, users.c.id == team_members.c.user_id)
                .join(teams, teams.c.id == team_members.c.team_id)
                .join(organizations, organizations.c.id == teams.c.organization_id)
            )
            .where(organizations.c.name == organization, teams.c.name == team)
            .order_by(users.c.name)
        )
        return [row.name for row in rows]

    # -- repositories ------------------------------------------------------------------------
    async def grant(self, pattern: str, subject: Subject, permission: Permission) -> None:
        await self._db.transaction(_tx_grant, pattern, subject, permission)

    async def grants(self) -> list[PermissionGrant]:
        by_user = select(
            repository_user_permissions.c.pattern,
            repository_user_permissions.c.permission,
            users.c.name,
        ).select_from(
            repository_user_permissions.join(
                users, users.c.id == repository_user_permissions.c.user_id
            )
        )
        by_team = select(
            repository_team_permissions.c.pattern,
            repository_team_permissions.c.permission,
            organizations.c.name.label("organization"),
            teams.c.name,
        ).select_from(
            repository_team_permissions.join(
                teams, teams.c.id == repository_team_permissions.c.team_id
            ).join(organizations, organizations.c.id == teams.c.organization_id)
        )
        found = [
            PermissionGrant(row.pattern, UserSubject(row.name), Permission.parse(row.permission))
            for row in await self._db.read(by_user)
        ] + [
            PermissionGrant(
                row.pattern,
                TeamSubject(row.organization, row.name),
                Permission.parse(row.permission),
            )
            for row in await self._db.read(by_team)
        ]

        def order(grant: PermissionGrant) -> tuple[str, int, str, str]:
            subject = grant.subject
            if isinstance(subject, UserSubject):
                return (grant.pattern, 0, subject.name, "")
            return (grant.pattern, 1, subject.organization, subject.team)

        return sorted(found, key=order)

    async def set_visibility(self, repository: str, visibility: Visibility) -> None:
        await self._db.transaction(_tx_set_visibility, repository, visibility)

    async def claim_repository(self, repository: str, visibility: Visibility) -> Visibility:
        return await self._db.transaction(_tx_claim_repository, repository, visibility)

    async def visibilities(self, repositories: Sequence[str]) -> dict[str, Visibility]:
        if not repositories:
            return {}
        rows = await self._db.read(
            select(repository_settings.c.repository, repository_settings.c.visibility).where(
                repository_settings.c.repository.in_(list(set(repositories)))
            )
        )
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

    async def teams(self, organization: str) -> list[str]:
        rows = await self._db.read(
            select(teams.c.name)
            .select_from(teams.join(organizations, organizations.c.id == teams.c.organization_id))
            .where(organizations.c.name == organization)
            .order_by(teams.c.name)
        )
        return [row.name for row in rows]

    # -- what the policy reads ---------------------------------------------------------------
    async def principal(self, user: str) -> Principal | None:
        # Three reads, not one transaction: on SQLite a transaction takes the write lock.
        # A role or grant changed between them is seen at the next token request.
        found = await self._db.read(_PRINCIPAL, {"name": user})
        if not found:
            return None
        roles = await self._db.read(_ROLES, {"name": user})
        grants = await self._db.read(_GRANTS, {"name": user})
        return Principal(
            name=user,
            is_admin=bool(found[0].is_admin),
            organizations={row.name: Role(row.role) for row in roles},
            grants=tuple(sorted((g.pattern, Permission.parse(g.permission)) for g in grants)),
        )

    async def namespaces(self, names: Sequence[str]) -> dict[str, Namespace]:
        if not names:
            return {}
        rows = await self._db.read(
            select(namespaces.c.name, namespaces.c.kind, organizations.c.default_permission)
            .select_from(
                namespaces.outerjoin(organizations, organizations.c.name == namespaces.c.name)
            )
            .where(namespaces.c.name.in_(list(set(names))))
        )
        return {
            row.name: Namespace(
                name=row.name,
                kind=NamespaceKind(row.kind),
                default_permission=Permission.parse(row.default_permission or "none"),
            )
            for row in rows
        }

    # -- refresh tokens ----------------------------------------------------------------------
    async def add_refresh_token(
        self, token_hash: str, user: str, service: str, client_id: str
    ) -> None:
        await self._db.transaction(_tx_add_refresh_token, token_hash, user, service, client_id)

    async def refresh_token_user(self, token_hash: str, service: str) -> str | None:
        rows = await self._db.read(
            select(users.c.name)
            .select_from(refresh_tokens.join(users, users.c.id == refresh_tokens.c.user_id))
            .where(
                and_(
                    refresh_tokens.c.token_hash == token_hash,
                    refresh_tokens.c.service == service,
                    ~users.c.disabled,
                )
            )
        )
        return str(rows[0].name) if rows else None

    async def revoke_refresh_tokens(self, user: str) -> int:
        return await self._db.transaction(_tx_revoke_refresh_tokens, user)

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
            _tx_create_access_token, user, check_name(name), token_hash, scopes, expires_at
        )

    async def access_tokens(self, user: str) -> list[AccessToken]:
        rows = await self._db.read(
            select(
                access_tokens.c.name,
                access_tokens.c.scopes,
                access_tokens.c.created_at,
                access_tokens.c.expires_at,
                access_tokens.c.last_used_at,
            )
            .select_from(access_tokens.join(users, users.c.id == access_tokens.c.user_id))
            .where(users.c.name == user)
            .order_by(access_tokens.c.name)
        )
        return [_access_token(user, row) for row in rows]

    async def revoke_access_token(self, user: str, name: str) -> None:
        await self._db.transaction(_tx_revoke_access_token, user, name)

    async def use_access_token(
        self, token_hash: str, now: datetime, *, touch_after: timedelta = timedelta(minutes=1)
    ) -> TokenUse | None:
        rows = await self._db.read(
            select(
                access_tokens.c.id,
                access_tokens.c.name,
                access_tokens.c.scopes,
                access_tokens.c.expires_at,
                access_tokens.c.last_used_at,
                users.c.name.label("user"),
            )
            .select_from(access_tokens.join(users, users.c.id == access_tokens.c.user_id))
            .where(access_tokens.c.token_hash == token_hash, ~users.c.disabled)
        )
        if not rows:
            return None
        row = rows[0]
        if row.expires_at is not None and row.expires_at <= now:
            return None
        stale = now - touch_after
        if row.last_used_at is None or row.last_used_at < stale:
            await self._db.transaction(_tx_touch_access_token, int(row.id), now, stale)
        return TokenUse(user=row.user, token=row.name, scopes=_scopes(row.scopes))

    # -- robots ------------------------------------------------------------------------------
    async def create_robot(self, organization: str, name: str) -> User:
        return await self._db.transaction(_tx_create_robot, organization, check_name(name))

    async def robots(self, organization: str) -> list[User]:
        rows = await self._db.read(
            select(*_USER_COLUMNS)
            .select_from(
                users.join(robots, robots.c.user_id == users.c.id).join(
                    organizations, organizations.c.id == robots.c.organization_id
                )
            )
            .where(organizations.c.name == organization)
            .order_by(users.c.name)
        )
        return [_user(row) for row in rows]

    async def delete_robot(self, organization: str, name: str) -> None:
        await self._db.transaction(_tx_delete_robot, organization, name)

    # -- failed logins -----------------------------------------------------------------------
    async def login_failures(self, keys: Sequence[str]) -> dict[str, tuple[datetime, int]]:
        if not keys:
            return {}
        rows = await self._db.read(
            select(
                login_failures.c.key, login_failures.c.window_start, login_failures.c.failures
            ).where(login_failures.c.key.in_(list(set(keys))))
        )
        return {row.key: (row.window_start, int(row.failures)) for row in rows}

    async def record_login_failure(
        self, keys: Sequence[str], now: datetime, window: timedelta
    ) -> None:
        if keys:
            await self._db.transaction(_tx_record_login_failure, keys, now, window)

    async def clear_login_failures(self, keys: Sequence[str]) -> None:
        if keys:
            await self._db.transaction(_tx_clear_login_failures, keys)

    # -- audit -------------------------------------------------------------------------------
    async def add_audit_event(self, event: AuditEvent) -> None:
        await self._db.transaction(_tx_add_audit_event, event)

    async def audit_events(
        self, *, since: datetime | None = None, actor: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        query = select(*(audit_events.c[name] for name in sql_audit.FIELDS))
        if since is not None:
            query = query.where(audit_events.c.time >= since)
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        query = query.order_by(audit_events.c.time.desc(), audit_events.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = await self._db.read(query)
        return [
            AuditEvent(**{name: getattr(row, name) for name in sql_audit.FIELDS})
            for row in reversed(rows)
        ]

    async def audit_page(
        self, where: AuditFilter, *, after: int | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        rows = await self._db.read(sql_audit.page_query(where, after, limit))
        return [sql_audit.record(row) for row in rows]

    async def purge_audit(self, before: datetime) -> int:
        return await self._db.transaction(sql_audit.tx_purge, before)
