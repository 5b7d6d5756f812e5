"""Management operations, each authorized for the principal acting: what the management API,
the administrator CLI and the web UI call.

Who may do what follows the registry's permission model (:mod:`dockyard.identity.policy`):

=======================================  ===============================================
site administrators                      anything
any user                                 read users and organizations; create
                                         organizations (owning them); manage its own
                                         password and tokens; see what it may pull
organization owners                      members, teams, default permission, robots, and
                                         grants on patterns inside the organization
organization members                     read the organization, its members and teams
repository admins                        visibility, description, grants on it, deletion
=======================================  ===============================================

Nobody learns that a private repository exists unless it may pull it: it is answered
:class:`~dockyard.errors.NameUnknown` exactly as one that does not exist. Robots act as
users but manage no passwords or tokens. Every change of users, memberships, permissions,
visibility, and every repository creation or deletion is written to the audit log.

Errors are the registry's (:mod:`dockyard.errors`): ``Denied``, ``NameUnknown``,
``ResourceUnknown``, ``Conflict``, ``RequestInvalid``, ``NameInvalid``, ``Unsupported``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from dockyard.errors import (
    Conflict,
    Denied,
    NameInvalid,
    NameUnknown,
    RequestInvalid,
    ResourceUnknown,
)
from dockyard.hub.content import RepositoryContent
from dockyard.hub.models import (
    AuditEventOut,
    AuditPage,
    GrantIn,
    GrantOut,
    MemberOut,
    OrganizationOut,
    PermissionName,
    RepositoryOut,
    RepositoryPage,
    RobotCreated,
    RobotOut,
    RoleName,
    ScopeName,
    TeamOut,
    TokenCreated,
    TokenOut,
    UserOut,
    VisibilityName,
)
from dockyard.identity.base import (
    ROBOT_SEPARATOR,
    AccessToken,
    AlreadyExists,
    AuditEvent,
    AuditFilter,
    IdentityStore,
    InvalidName,
    Namespace,
    NotFound,
    Organization,
    Permission,
    PermissionGrant,
    Principal,
    RepositorySettings,
    Role,
    Subject,
    TeamSubject,
    TokenScope,
    User,
    UserSubject,
    Visibility,
    check_name,
)
from dockyard.identity.passwords import Passwords
from dockyard.identity.policy import matches, namespace_of, permission
from dockyard.identity.tokens import new_secret, parse_lifetime, secret_hash
from dockyard.reference import validate_name

__all__ = ["ROBOT_TOKEN", "Management", "ManagementSettings", "cli_principal"]

ROBOT_TOKEN = "default"
MAX_PAGE = 1000


def cli_principal(name: str = "cli") -> Principal:
    """The site administrator the CLI acts as (``name`` is what the audit log shows)."""
    return Principal(name=name, is_admin=True, organizations={}, grants=())


@dataclass(frozen=True, slots=True)
class ManagementSettings:
    """What is configured, not acted upon: shared by every ``Management``."""

    default_visibility: Visibility = Visibility.PRIVATE


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The identity store's errors as the registry's."""
    try:
        yield
    except AlreadyExists as error:
        raise Conflict(message=str(error)) from None
    except NotFound as error:
        raise ResourceUnknown(message=str(error)) from None
    except InvalidName as error:
        raise RequestInvalid(message=str(error)) from None


def _name(text: str) -> str:
    with _translated():
        return check_name(text)


def _when(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _user_out(user: User) -> UserOut:
    return UserOut(
        name=user.name,
        is_admin=user.is_admin,
        disabled=user.disabled,
        robot=ROBOT_SEPARATOR in user.name,
        created_at=user.created_at,
    )


def _organization_out(organization: Organization) -> OrganizationOut:
    label: PermissionName = organization.default_permission.label  # type: ignore[assignment]
    return OrganizationOut(
        name=organization.name, default_permission=label, created_at=organization.created_at
    )


def _token_out(token: AccessToken) -> TokenOut:
    scopes: list[ScopeName] = sorted(scope.value for scope in token.scopes)
    return TokenOut(
        user=token.user,
        name=token.name,
        scopes=scopes,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


def _grant_out(grant: PermissionGrant) -> GrantOut:
    label: PermissionName = grant.permission.label  # type: ignore[assignment]
    subject = grant.subject
    if isinstance(subject, UserSubject):
        return GrantOut(pattern=grant.pattern, user=subject.name, permission=label)
    return GrantOut(
        pattern=grant.pattern, team=f"{subject.organization}/{subject.team}", permission=label
    )


def _check_pattern(pattern: str) -> str:
    """A repository name, where ``*`` and ``**`` may stand for parts of components."""
    probe = pattern.replace("**", "x").replace("*", "x")
    try:
        validate_name(probe)
    except NameInvalid:
        raise RequestInvalid(
            message=f"invalid pattern {pattern[:100]!r}: a repository name, "
            "optionally with * (within a component) or ** (across components)"
        ) from None
    return pattern


class Management:
    """Management operations as ``actor`` (from ``IdentityStore.principal``, or
    :func:`cli_principal`), from ``client_address`` (for the audit log)."""

    def __init__(
        self,
        store: IdentityStore,
        actor: Principal,
        *,
        content: RepositoryContent | None = None,
        settings: ManagementSettings | None = None,
        passwords: Passwords | None = None,
        client_address: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.actor = actor
        self.content = content
        self.settings = settings or ManagementSettings()
        self.passwords = passwords or Passwords()
        self.client_address = client_address
        self.clock = clock

    # -- helpers -----------------------------------------------------------------------------
    async def record_action(
        self,
        action: str,
        detail: str | None = None,
        *,
        repository: str | None = None,
        time: datetime | None = None,
    ) -> None:
        """Adds a successful ``action`` of the actor to the audit log, at ``time`` (by default
        now on this object's clock)."""
        await self.store.add_audit_event(
            AuditEvent(
                time=self.clock() if time is None else time,
                action=action,
                outcome="success",
                actor=self.actor.name,
                client_address=self.client_address,
                repository=repository,
                detail=detail,
            )
        )

    @property
    def is_robot(self) -> bool:
        return ROBOT_SEPARATOR in self.actor.name

    def _require_admin(self) -> None:
        if not self.actor.is_admin:
            raise Denied(message="only site administrators may do this")

    def _require_person(self) -> None:
        if self.is_robot:
            raise Denied(message="robots cannot do this")

    def _require_self_or_admin(self, user: str) -> None:
        if user != self.actor.name and not self.actor.is_admin:
            raise Denied(message="only the user itself or a site administrator may do this")

    async def _organization(self, name: str) -> Organization:
        found = await self.store.get_organization(name)
        if found is None:
            raise ResourceUnknown(message=f"no organization {name[:100]!r}")
        return found

    async def _require_owner(self, organization: str) -> Organization:
        found = await self._organization(organization)
        if not self.actor.is_admin and self.actor.organizations.get(organization) is not Role.OWNER:
            raise Denied(message=f"only owners of {organization!r} may do this")
        return found

    async def _require_member(self, organization: str) -> Organization:
        found = await self._organization(organization)
        if not self.actor.is_admin and organization not in self.actor.organizations:
            raise Denied(message=f"only members of {organization!r} may see this")
        return found

    async def _namespace(self, repository: str) -> Namespace | None:
        owner = namespace_of(repository)
        if owner is None:
            return None
        return (await self.store.namespaces([owner])).get(owner)

    async def _permission(self, repository: str) -> Permission:
        return permission(self.actor, repository, await self._namespace(repository))

    async def _visible(self, repository: str) -> tuple[RepositorySettings, Permission]:
        """The repository if the actor may see it, else ``NameUnknown`` as if absent."""
        unknown = NameUnknown(detail={"name": repository[:255]})
        try:
            validate_name(repository)
        except NameInvalid:
            raise unknown from None
        found = await self.store.repository(repository)
        if found is None:
            raise unknown
        level = await self._permission(repository)
        if level is Permission.NONE:
            if found.visibility is not Visibility.PUBLIC:
                raise unknown
            level = Permission.READ  # anyone may pull a public repository
        return found, level

    async def _administered(self, repository: str) -> RepositorySettings:
        found, level = await self._visible(repository)
        if level is not Permission.ADMIN:
            raise Denied(message=f"only admins of {repository!r} may do this")
        return found

    def _repository_out(self, found: RepositorySettings, level: Permission) -> RepositoryOut:
        namespace = namespace_of(found.name)
        visibility: VisibilityName = found.visibility.value
        label: PermissionName = level.label  # type: ignore[assignment]
        return RepositoryOut(
            name=found.name,
            namespace=namespace,
            official=namespace is None,
            visibility=visibility,
            description=found.description,
            created_at=found.created_at,
            permission=label,
        )

    # -- users -------------------------------------------------------------------------------
    async def list_users(self) -> list[UserOut]:
        """Every user, robots included (site administrators only)."""
        self._require_admin()
        return [_user_out(user) for user in await self.store.list_users()]

    async def get_user(self, name: str) -> UserOut:
        """Any user (names are public: they are namespaces)."""
        found = await self.store.get_user(name)
        if found is None:
            raise ResourceUnknown(message=f"no user {name[:100]!r}")
        return _user_out(found)

    async def create_user(self, name: str, password: str, *, is_admin: bool = False) -> UserOut:
        """A new user (site administrators only); ``Conflict`` if the name is a user's or an
        organization's."""
        self._require_admin()
        _name(name)
        with _translated():
            created = await self.store.create_user(
                name, self.passwords.hash(password), is_admin=is_admin
            )
        await self.record_action("user.create", f"user {name}{' (admin)' if is_admin else ''}")
        return _user_out(created)

    async def update_user(
        self, name: str, *, disabled: bool | None = None, is_admin: bool | None = None
    ) -> UserOut:
        """Disable or enable a user, make it a site administrator or not (site
        administrators only)."""
        self._require_admin()
        if name == self.actor.name and (disabled or is_admin is False):
            raise Denied(message="administrators cannot disable or demote themselves")
        with _translated():
            if disabled is not None:
                await self.store.set_disabled(name, disabled)
                await self.record_action(
                    "user.disable" if disabled else "user.enable", f"user {name}"
                )
            if is_admin is not None:
                await self.store.set_admin(name, is_admin)
                await self.record_action(
                    "user.admin" if is_admin else "user.unadmin", f"user {name}"
                )
        return await self.get_user(name)

    async def change_password(self, current: str, new: str, *, user: str | None = None) -> None:
        """Change the actor's password, given the current one; a site administrator may set
        another ``user``'s without it."""
        self._require_person()
        target = user or self.actor.name
        if target != self.actor.name:
            self._require_admin()
        else:
            credentials = await self.store.credentials(target)
            stored = credentials.password_hash if credentials is not None else None
            if not await self.passwords.averify(stored, current):
                raise Denied(message="the current password is wrong")
        if not new:
            raise RequestInvalid(message="the new password must not be empty")
        with _translated():
            await self.store.set_password(target, self.passwords.hash(new))
        await self.record_action("user.password", f"user {target}")

    # -- organizations -----------------------------------------------------------------------
    async def create_organization(
        self,
        name: str,
        *,
        owner: str | None = None,
        default_permission: PermissionName = "none",
    ) -> OrganizationOut:
        """A new organization; its first owner is ``owner`` (site administrators may name
        anyone; others only themselves, the default)."""
        self._require_person()
        owner = owner or self.actor.name
        if owner != self.actor.name:
            self._require_admin()
        _name(name)
        with _translated():
            created = await self.store.create_organization(
                name, owner=owner, default_permission=Permission.parse(default_permission)
            )
        await self.record_action("organization.create", f"organization {name}, owner {owner}")
        return _organization_out(created)

    async def get_organization(self, name: str) -> OrganizationOut:
        return _organization_out(await self._organization(name))

    async def set_default_permission(
        self, organization: str, default_permission: PermissionName
    ) -> OrganizationOut:
        await self._require_owner(organization)
        with _translated():
            await self.store.set_default_permission(
                organization, Permission.parse(default_permission)
            )
        await self.record_action(
            "organization.default_permission",
            f"organization {organization}: {default_permission}",
        )
        return await self.get_organization(organization)

    async def members(self, organization: str) -> list[MemberOut]:
        await self._require_member(organization)
        return [
            MemberOut(user=m.user, role=m.role.value)
            for m in await self.store.members(organization)
        ]

    async def set_member(self, organization: str, user: str, role: RoleName) -> MemberOut:
        """Add ``user`` with ``role``, or change its role (owners)."""
        await self._require_owner(organization)
        if ROBOT_SEPARATOR in user:
            raise RequestInvalid(message="robots are not members; grant them permissions")
        if role == Role.MEMBER.value and user == self.actor.name and not self.actor.is_admin:
            await self._keep_an_owner(organization, user)
        with _translated():
            await self.store.set_member(organization, user, Role(role))
        await self.record_action(
            "organization.member", f"organization {organization}: {user} {role}"
        )
        return MemberOut(user=user, role=role)

    async def _keep_an_owner(self, organization: str, leaving: str) -> None:
        owners = [m.user for m in await self.store.members(organization) if m.role is Role.OWNER]
        if owners == [leaving]:
            raise Denied(message=f"{organization!r} would have no owner left")

    async def remove_member(self, organization: str, user: str) -> None:
        await self._require_owner(organization)
        await self._keep_an_owner(organization, user)
        current = {m.user for m in await self.store.members(organization)}
        if user not in current:
            raise ResourceUnknown(message=f"{user[:100]!r} is not a member of {organization!r}")
        with _translated():
            await self.store.remove_member(organization, user)
        await self.record_action(
            "organization.member.remove", f"organization {organization}: {user}"
        )

    # -- teams -------------------------------------------------------------------------------
    async def create_team(self, organization: str, team: str) -> TeamOut:
        await self._require_owner(organization)
        _name(team)
        with _translated():
            await self.store.create_team(organization, team)
        await self.record_action("team.create", f"team {organization}/{team}")
        return TeamOut(organization=organization, name=team, members=[])

    async def teams(self, organization: str) -> list[TeamOut]:
        await self._require_member(organization)
        return [
            TeamOut(
                organization=organization,
                name=team,
                members=await self.store.team_members(organization, team),
            )
            for team in await self.store.teams(organization)
        ]

    async def get_team(self, organization: str, team: str) -> TeamOut:
        await self._require_member(organization)
        if team not in await self.store.teams(organization):
            raise ResourceUnknown(message=f"no team {team[:100]!r} in {organization!r}")
        members = await self.store.team_members(organization, team)
        return TeamOut(organization=organization, name=team, members=members)

    async def add_team_member(self, organization: str, team: str, user: str) -> TeamOut:
        """``user`` must be a member of the organization already."""
        await self._require_owner(organization)
        with _translated():
            await self.store.add_team_member(organization, team, user)
        await self.record_action("team.member", f"team {organization}/{team}: {user}")
        return await self.get_team(organization, team)

    async def remove_team_member(self, organization: str, team: str, user: str) -> TeamOut:
        await self._require_owner(organization)
        found = await self.get_team(organization, team)
        if user not in found.members:
            raise ResourceUnknown(message=f"{user[:100]!r} is not in team {team!r}")
        with _translated():
            await self.store.remove_team_member(organization, team, user)
        await self.record_action("team.member.remove", f"team {organization}/{team}: {user}")
        return await self.get_team(organization, team)

    # -- repositories ------------------------------------------------------------------------
    async def create_repository(
        self,
        name: str,
        *,
        visibility: VisibilityName | None = None,
        description: str | None = None,
    ) -> RepositoryOut:
        """A repository, empty until pushed to. The actor must be admin where it would be:
        its own namespace, an organization it owns, or (site administrators) anywhere."""
        try:
            validate_name(name)
        except NameInvalid as error:
            raise NameInvalid(detail={"name": name[:255]}, message=error.text) from None
        level = await self._permission(name)
        if level is not Permission.ADMIN:
            raise Denied(message=f"you may not create repositories in {name[:255]!r}")
        chosen = Visibility(visibility) if visibility else self.settings.default_visibility
        with _translated():
            created = await self.store.create_repository(name, chosen, description)
        await self.record_action("repository.create", f"visibility {chosen.value}", repository=name)
        return self._repository_out(created, level)

    async def get_repository(self, name: str) -> RepositoryOut:
        found, level = await self._visible(name)
        return self._repository_out(found, level)

    async def list_repositories(
        self, *, after: str | None = None, limit: int = 100, namespace: str | None = None
    ) -> RepositoryPage:
        """The repositories the actor may see, by name, after ``after``; with
        ``namespace``, only those in it."""
        limit = max(1, min(limit, MAX_PAGE))
        if namespace is not None and after is None:
            after = f"{namespace}/"  # names in it sort after this
        shown: list[RepositoryOut] = []
        owners: dict[str, Namespace | None] = {}
        cursor = after
        while len(shown) < limit:
            batch = await self.store.repositories(after=cursor, limit=limit * 2)
            if not batch:
                break
            wanted = {namespace_of(r.name) for r in batch} - set(owners) - {None}
            found = await self.store.namespaces(sorted(n for n in wanted if n))
            owners.update({n: found.get(n) for n in wanted if n})
            for item in batch:
                cursor = item.name
                if namespace is not None and namespace_of(item.name) != namespace:
                    if item.name > f"{namespace}/\U0010ffff":
                        return RepositoryPage(repositories=shown, next=None)
                    continue
                space = namespace_of(item.name)
                level = permission(self.actor, item.name, owners.get(space) if space else None)
                if level is Permission.NONE:
                    if item.visibility is not Visibility.PUBLIC:
                        continue
                    level = Permission.READ
                shown.append(self._repository_out(item, level))
                if len(shown) == limit:
                    return RepositoryPage(repositories=shown, next=item.name)
        return RepositoryPage(repositories=shown, next=None)

    async def update_repository(
        self,
        name: str,
        *,
        visibility: VisibilityName | None = None,
        description: str | None = None,
    ) -> RepositoryOut:
        """Change visibility and/or description (repository admins)."""
        before = await self._administered(name)
        with _translated():
            changed = await self.store.update_repository(
                name,
                visibility=Visibility(visibility) if visibility else None,
                description=description,
            )
        if changed.visibility is not before.visibility:
            await self.record_action(
                "repository.visibility",
                f"{before.visibility.value} -> {changed.visibility.value}",
                repository=name,
            )
        if description is not None and changed.description != before.description:
            await self.record_action("repository.description", None, repository=name)
        return self._repository_out(changed, Permission.ADMIN)

    async def delete_repository(self, name: str) -> int:
        """Delete the repository: its manifests and tags (garbage collection then reclaims
        the bytes), its settings and the grants naming it. How many manifests went."""
        await self._administered(name)
        deleted = await self.content.delete(name) if self.content is not None else 0
        await self.store.forget_repository(name)
        await self.record_action("repository.delete", f"{deleted} manifest(s)", repository=name)
        return deleted

    # -- permissions -------------------------------------------------------------------------
    async def _may_manage_pattern(self, pattern: str) -> bool:
        """Site admins any pattern; a repository's admins that exact name; owners of a
        namespace (the user, or an organization's owners) any pattern inside it."""
        if self.actor.is_admin:
            return True
        if "*" not in pattern:
            if await self._permission(pattern) is Permission.ADMIN:
                return True
            # Refused alike whether or not it exists, unless the actor may see it.
            await self._visible(pattern)
            return False
        owner = namespace_of(pattern)
        if owner is None or "*" in owner:
            return False
        namespace = (await self.store.namespaces([owner])).get(owner)
        if namespace is None:
            return False
        owned = Principal(self.actor.name, False, self.actor.organizations, grants=())
        return permission(owned, f"{owner}/x", namespace) is Permission.ADMIN

    @staticmethod
    def _subject(grant: GrantIn) -> Subject:
        if (grant.user is None) == (grant.team is None):
            raise RequestInvalid(message="give exactly one of user and team")
        if grant.user is not None:
            return UserSubject(grant.user)
        assert grant.team is not None
        organization, slash, team = grant.team.partition("/")
        if not slash or not organization or not team:
            raise RequestInvalid(message="team must be organization/team")
        return TeamSubject(organization, team)

    async def grant(self, grant: GrantIn) -> GrantOut:
        """Set (or with ``none`` revoke) a permission on a repository or a pattern."""
        pattern = _check_pattern(grant.pattern)
        subject = self._subject(grant)
        if not await self._may_manage_pattern(pattern):
            raise Denied(message=f"you may not manage permissions on {pattern[:255]!r}")
        level = Permission.parse(grant.permission)
        with _translated():
            await self.store.grant(pattern, subject, level)
        shown = _grant_out(PermissionGrant(pattern, subject, level))
        who = shown.user or f"team {shown.team}"
        await self.record_action(
            "permission.revoke" if level is Permission.NONE else "permission.grant",
            f"{who}: {level.label} on {pattern}",
            repository=pattern if "*" not in pattern else None,
        )
        return shown

    async def grants(self, *, repository: str | None = None) -> list[GrantOut]:
        """The grants the actor may manage; with ``repository``, those that cover it."""
        # No visibility check for ``repository``: only grants the actor manages are shown.
        shown = []
        for grant in await self.store.grants():
            if repository is not None and not matches(grant.pattern, repository):
                continue
            if await self._may_manage_pattern_quietly(grant.pattern):
                shown.append(_grant_out(grant))
        return shown

    async def _may_manage_pattern_quietly(self, pattern: str) -> bool:
        try:
            return await self._may_manage_pattern(pattern)
        except NameUnknown:
            return False

    # -- access tokens -----------------------------------------------------------------------
    def _token_user(self, user: str | None) -> str:
        self._require_person()
        target = user or self.actor.name
        self._require_self_or_admin(target)
        return target

    async def create_token(
        self,
        name: str,
        scopes: list[ScopeName],
        *,
        expires: str | None = None,
        user: str | None = None,
    ) -> TokenCreated:
        """A new personal access token of the actor (or, for site administrators, of
        ``user``); its secret is in the answer and nowhere else."""
        target = self._token_user(user)
        _name(name)
        if not scopes:
            raise RequestInvalid(message="a token needs at least one scope")
        try:
            wanted = frozenset(TokenScope.parse(s) for s in scopes)
            lifetime = parse_lifetime(expires) if expires else None
        except ValueError as error:
            raise RequestInvalid(message=str(error)) from None
        expires_at = self.clock().replace(microsecond=0) + lifetime if lifetime else None
        secret = new_secret()
        with _translated():
            created = await self.store.create_access_token(
                target, name, secret_hash(secret), wanted, expires_at
            )
        await self.record_action(
            "token.create", f"token {name} of {target} ({','.join(sorted(scopes))})"
        )
        return TokenCreated(token=_token_out(created), secret=secret)

    async def tokens(self, *, user: str | None = None) -> list[TokenOut]:
        target = self._token_user(user)
        if await self.store.get_user(target) is None:
            raise ResourceUnknown(message=f"no user {target[:100]!r}")
        return [_token_out(t) for t in await self.store.access_tokens(target)]

    async def revoke_token(self, name: str, *, user: str | None = None) -> None:
        target = self._token_user(user)
        with _translated():
            await self.store.revoke_access_token(target, name)
        await self.record_action("token.revoke", f"token {name} of {target}")

    # -- robots ------------------------------------------------------------------------------
    async def create_robot(self, organization: str, name: str) -> RobotCreated:
        """The robot ``organization+name`` and its token's secret (all scopes, no expiry:
        what it may do is what it is granted), shown this once."""
        await self._require_owner(organization)
        _name(name)
        secret = new_secret()
        with _translated():
            robot = await self.store.create_robot(organization, name)
            try:
                await self.store.create_access_token(
                    robot.name, ROBOT_TOKEN, secret_hash(secret), frozenset(TokenScope), None
                )
            except BaseException:
                await self.store.delete_robot(organization, name)
                raise
        await self.record_action("robot.create", f"robot {robot.name}")
        return RobotCreated(
            robot=RobotOut(name=robot.name, organization=organization, created_at=robot.created_at),
            secret=secret,
        )

    async def robots(self, organization: str) -> list[RobotOut]:
        await self._require_owner(organization)
        return [
            RobotOut(name=r.name, organization=organization, created_at=r.created_at)
            for r in await self.store.robots(organization)
        ]

    async def delete_robot(self, organization: str, name: str) -> None:
        await self._require_owner(organization)
        with _translated():
            await self.store.delete_robot(organization, name)
        await self.record_action("robot.delete", f"robot {organization}{ROBOT_SEPARATOR}{name}")

    # -- audit -------------------------------------------------------------------------------
    async def audit(
        self, where: AuditFilter, *, after: int | None = None, limit: int = 100
    ) -> AuditPage:
        """Events ``where`` selects, oldest first, a page at a time (site administrators)."""
        self._require_admin()
        limit = max(1, min(limit, MAX_PAGE))
        records = await self.store.audit_page(where, after=after, limit=limit)
        events = [
            AuditEventOut(id=r.id, **{**_event_fields(r.event), "time": _when(r.event.time)})
            for r in records
        ]
        return AuditPage(events=events, next=records[-1].id if len(records) == limit else None)

    def export_audit(self, where: AuditFilter) -> AsyncIterator[AuditEventOut]:
        """Every event ``where`` selects, oldest first, read a page at a time (site
        administrators: checked now, before the first event is read)."""
        self._require_admin()
        return self._export(where)

    async def _export(self, where: AuditFilter) -> AsyncIterator[AuditEventOut]:
        after: int | None = None
        while True:
            page = await self.audit(where, after=after, limit=MAX_PAGE)
            for event in page.events:
                yield event
            if page.next is None:
                return
            after = page.next


def _event_fields(event: AuditEvent) -> dict[str, object]:
    return {
        "time": event.time,
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor,
        "client_address": event.client_address,
        "repository": event.repository,
        "digest": event.digest,
        "tag": event.tag,
        "detail": event.detail,
    }
