"""The ``IdentityStore`` seam: accounts, organizations, teams, and who may do what.

It knows nothing of content (that is the ``MetadataStore``'s) and decides nothing: the
records it keeps are read by :mod:`dockyard.identity.policy`, a pure function, to decide.

Names of users and organizations share one set (both name the first component of
repository names, their namespace), so a user and an organization can never have the
same name.

Robot accounts are users an organization owns, named ``organization+name`` (a ``+`` is in
no repository name, so a robot's name is never a namespace), whose only credential is an
access token.

    IdentityError
    ├── AlreadyExists    a user, organization, team or token that exists already
    ├── InvalidName      a name that cannot be a repository name's first component
    └── NotFound         a user, organization, team or token that does not exist
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "ROBOT_SEPARATOR",
    "AccessToken",
    "AlreadyExists",
    "AuditEvent",
    "AuditFilter",
    "AuditRecord",
    "Credentials",
    "IdentityError",
    "IdentityStore",
    "InvalidName",
    "Namespace",
    "NamespaceKind",
    "NotFound",
    "Organization",
    "OrganizationMember",
    "Permission",
    "PermissionGrant",
    "Principal",
    "RepositorySettings",
    "Role",
    "Subject",
    "TeamSubject",
    "TokenScope",
    "TokenUse",
    "User",
    "UserSubject",
    "Visibility",
    "check_name",
    "robot_name",
]


class IdentityError(Exception):
    """Root of the identity store's errors."""


class AlreadyExists(IdentityError):
    pass


class NotFound(IdentityError):
    pass


class InvalidName(IdentityError):
    pass


# One path component of the distribution spec's name grammar; 64 characters at most.
_NAME = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
MAX_NAME = 64


def check_name(name: str) -> str:
    """``name`` if it may name a user, an organization or a team, else :class:`InvalidName`:
    lower-case letters and digits, separated by ``.``, ``_``, ``__`` or dashes."""
    if len(name) > MAX_NAME or _NAME.fullmatch(name) is None:
        raise InvalidName(
            f"invalid name {name[:80]!r}: use at most {MAX_NAME} lower-case letters and digits, "
            "separated by '.', '_', '__' or '-'"
        )
    return name


class Permission(enum.IntEnum):
    """What a subject may do on a repository; each level includes the ones below."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Permission:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(
                f"unknown permission {text!r} (expected none, read, write or admin)"
            ) from None


class TokenScope(enum.StrEnum):
    """What an access token may be used for: it caps the actions its user is granted."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"

    @property
    def actions(self) -> frozenset[str]:
        return _SCOPE_ACTIONS[self]

    @classmethod
    def parse(cls, text: str) -> TokenScope:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown token scope {text!r} (expected read, write or delete)"
            ) from None


_SCOPE_ACTIONS: Mapping[TokenScope, frozenset[str]] = {
    TokenScope.READ: frozenset({"pull"}),
    TokenScope.WRITE: frozenset({"pull", "push"}),
    TokenScope.DELETE: frozenset({"pull", "push", "delete"}),
}

ROBOT_SEPARATOR = "+"


def robot_name(organization: str, name: str) -> str:
    """The full name of the robot ``name`` of ``organization``: ``acme+ci``."""
    return f"{check_name(organization)}{ROBOT_SEPARATOR}{check_name(name)}"


class Role(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class NamespaceKind(enum.StrEnum):
    USER = "user"
    ORGANIZATION = "organization"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    is_admin: bool
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user and the hash its password is checked against (None: no password login)."""

    user: User
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token as listed: never its secret, which is shown once, at creation."""

    user: str
    name: str
    scopes: frozenset[TokenScope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenUse:
    """Who a presented token logs in, and what its scopes allow."""

    user: str
    token: str
    scopes: frozenset[TokenScope]

    @property
    def actions(self) -> frozenset[str]:
        allowed: frozenset[str] = frozenset()
        for scope in self.scopes:
            allowed |= scope.actions
        return allowed


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit log. ``outcome`` is ``success`` or ``failure`` (or a reason)."""

    time: datetime
    action: str
    outcome: str
    actor: str | None = None
    client_address: str | None = None
    repository: str | None = None
    digest: str | None = None
    tag: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored audit event with its position in the log (increasing with time)."""

    id: int
    event: AuditEvent


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit events a query selects; None matches anything."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    repository: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class RepositorySettings:
    """What the hub keeps about a repository (its content is the metadata store's)."""

    name: str
    visibility: Visibility
    description: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Organization:
    name: str
    default_permission: Permission
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrganizationMember:
    user: str
    role: Role


@dataclass(frozen=True, slots=True)
class UserSubject:
    name: str


@dataclass(frozen=True, slots=True)
class TeamSubject:
    organization: str
    team: str


Subject = UserSubject | TeamSubject


@dataclass(frozen=True, slots=True)
class PermissionGrant:
    """``permission`` on the repositories ``pattern`` matches (see ``policy.matches``)."""

    pattern: str
    subject: Subject
    permission: Permission


@dataclass(frozen=True, slots=True)
class Namespace:
    """The owner of a namespace: a user, or an organization with its members' default."""

    name: str
    kind: NamespaceKind
    default_permission: Permission = Permission.NONE


@dataclass(frozen=True, slots=True)
class Principal:
    """Everything the policy needs to know about an authenticated user."""

    name: str
    is_admin: bool
    organizations: Mapping[str, Role]
    """Organization name -> the user's role in it."""
    grants: tuple[tuple[str, Permission], ...]
    """(pattern, permission) granted to the user or to any of its teams."""


@runtime_checkable
class IdentityStore(Protocol):
    # -- users -------------------------------------------------------------------------------
    async def create_user(
        self, name: str, password_hash: str | None, *, is_admin: bool = False
    ) -> User:
        """A new user; :class:`AlreadyExists` if the name is a user's or an organization's."""
        ...

    async def get_user(self, name: str) -> User | None: ...

    async def credentials(self, name: str) -> Credentials | None: ...

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    async def set_password(self, name: str, password_hash: str | None) -> None: ...

    async def set_admin(self, name: str, is_admin: bool) -> None: ...

    async def set_disabled(self, name: str, disabled: bool) -> None:
        """Disabling a user also revokes its refresh tokens."""
        ...

    # -- organizations and teams -------------------------------------------------------------
    async def create_organization(
        self, name: str, *, owner: str, default_permission: Permission = Permission.NONE
    ) -> Organization:
        """A new organization whose first owner is the user ``owner``."""
        ...

    async def get_organization(self, name: str) -> Organization | None: ...

    async def set_default_permission(self, organization: str, permission: Permission) -> None: ...

    async def set_member(self, organization: str, user: str, role: Role) -> None:
        """Add ``user`` to ``organization`` with ``role``, or change its role."""
        ...

    async def remove_member(self, organization: str, user: str) -> None:
        """Also removes the user from the organization's teams."""
        ...

    async def members(self, organization: str) -> list[OrganizationMember]: ...

    async def create_team(self, organization: str, team: str) -> None: ...

    async def add_team_member(self, organization: str, team: str, user: str) -> None:
        """The user must be a member of the organization."""
        ...

    async def remove_team_member(self, organization: str, team: str, user: str) -> None: ...

    async def team_members(self, organization: str, team: str) -> list[str]: ...

    # -- repositories ------------------------------------------------------------------------
    async def grant(self, pattern: str, subject: Subject, permission: Permission) -> None:
        """Set the subject's permission on ``pattern`` (NONE removes the grant)."""
        ...

    async def grants(self) -> list[PermissionGrant]:
        """Every grant, by pattern then subject."""
        ...

    async def set_visibility(self, repository: str, visibility: Visibility) -> None: ...

    async def claim_repository(self, repository: str, visibility: Visibility) -> Visibility:
        """The repository's visibility, first set to ``visibility`` if it has none yet."""
        ...

    async def visibilities(self, repositories: Sequence[str]) -> dict[str, Visibility]:
        """The visibility of each of ``repositories`` that has one."""
        ...

    async def create_repository(
        self, repository: str, visibility: Visibility, description: str | None
    ) -> RepositorySettings:
        """Settings for a repository that has none; :class:`AlreadyExists` if it has."""
        ...

    async def repository(self, repository: str) -> RepositorySettings | None: ...

    async def repositories(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RepositorySettings]:
        """Repositories with settings, by name, after ``after``; at most ``limit``."""
        ...

    async def update_repository(
        self,
        repository: str,
        *,
        visibility: Visibility | None = None,
        description: str | None = None,
    ) -> RepositorySettings:
        """Change what is given (``description=""`` clears it); :class:`NotFound` if the
        repository has no settings."""
        ...

    async def forget_repository(self, repository: str) -> None:
        """Drop the repository's settings and the grants naming exactly it."""
        ...

    async def teams(self, organization: str) -> list[str]:
        """The organization's teams, by name."""
        ...

    # -- what the policy reads ---------------------------------------------------------------
    async def principal(self, user: str) -> Principal | None:
        """The user with its roles and grants; None if it does not exist or is disabled."""
        ...

    async def namespaces(self, names: Sequence[str]) -> dict[str, Namespace]:
        """The owner of each of ``names`` that is a user's or an organization's."""
        ...

    # -- refresh tokens ----------------------------------------------------------------------
    async def add_refresh_token(
        self, token_hash: str, user: str, service: str, client_id: str
    ) -> None: ...

    async def refresh_token_user(self, token_hash: str, service: str) -> str | None:
        """The enabled user a refresh token was issued to for ``service``, else None."""
        ...

    async def revoke_refresh_tokens(self, user: str) -> int:
        """Revoke every refresh token of ``user``; how many there were."""
        ...

    # -- access tokens -----------------------------------------------------------------------
    async def create_access_token(
        self,
        user: str,
        name: str,
        token_hash: str,
        scopes: frozenset[TokenScope],
        expires_at: datetime | None,
    ) -> AccessToken:
        """A new token of ``user``; :class:`AlreadyExists` if the user has one of that name,
        :class:`NotFound` if there is no such user."""
        ...

    async def access_tokens(self, user: str) -> list[AccessToken]:
        """The user's tokens, by name."""
        ...

    async def revoke_access_token(self, user: str, name: str) -> None:
        """:class:`NotFound` if the user has no token of that name."""
        ...

    async def use_access_token(
        self, token_hash: str, now: datetime, *, touch_after: timedelta = timedelta(minutes=1)
    ) -> TokenUse | None:
        """The enabled user whose unexpired token this is, else None. The token's last use
        is set to ``now`` if it is older than ``touch_after`` (to spare writes)."""
        ...

    # -- robots ------------------------------------------------------------------------------
    async def create_robot(self, organization: str, name: str) -> User:
        """The robot ``organization+name``: a user without a password, owned by the
        organization, with no permission until one is granted."""
        ...

    async def robots(self, organization: str) -> list[User]:
        """The organization's robots, by name."""
        ...

    async def delete_robot(self, organization: str, name: str) -> None:
        """Delete the robot with its tokens and grants; :class:`NotFound` if none."""
        ...

    # -- failed logins -----------------------------------------------------------------------
    async def login_failures(self, keys: Sequence[str]) -> dict[str, tuple[datetime, int]]:
        """For each of ``keys`` with failures counted: the start of its window and the count."""
        ...

    async def record_login_failure(
        self, keys: Sequence[str], now: datetime, window: timedelta
    ) -> None:
        """Count a failure under each key, in a new window if its last began ``window`` ago."""
        ...

    async def clear_login_failures(self, keys: Sequence[str]) -> None: ...

    # -- audit -------------------------------------------------------------------------------
    async def add_audit_event(self, event: AuditEvent) -> None: ...

    async def audit_events(
        self, *, since: datetime | None = None, actor: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """Events at or after ``since`` (by ``actor``), oldest first; the last ``limit``."""
        ...

    async def audit_page(
        self, where: AuditFilter, *, after: int | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Events ``where`` selects whose id is above ``after``, oldest first, ``limit`` at
        most: page on by passing the last id seen."""
        ...

    async def purge_audit(self, before: datetime) -> int:
        """Delete audit events and failed-login counters older than ``before``; how many
        audit events went."""
        ...
