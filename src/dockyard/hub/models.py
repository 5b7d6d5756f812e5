"""The shapes of management requests and answers, as pydantic models: validated on the way
in, serialized on the way out, and the source of the OpenAPI document's schemas.

Request models forbid unknown fields and do not coerce types (``"true"`` is no boolean).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEventOut",
    "AuditPage",
    "GrantIn",
    "GrantOut",
    "ImmutableRuleCreate",
    "ImmutableRuleOut",
    "MemberIn",
    "MemberOut",
    "NamespaceUsageOut",
    "OrganizationCreate",
    "OrganizationOut",
    "OrganizationUpdate",
    "PasswordChange",
    "PermissionName",
    "QuotaOut",
    "QuotaScopeName",
    "QuotaSet",
    "ReadmeOut",
    "ReadmeSet",
    "RemovalOut",
    "RepositoryCreate",
    "RepositoryOut",
    "RepositoryPage",
    "RepositoryUpdate",
    "RepositoryUsageOut",
    "RepositoryUsageSummary",
    "RetentionPolicyCreate",
    "RetentionPolicyOut",
    "RetentionReportOut",
    "RetentionRun",
    "RobotCreated",
    "RobotIn",
    "RobotOut",
    "RoleName",
    "ScopeName",
    "SignUpIn",
    "TagUsageOut",
    "TeamCreate",
    "TeamMemberIn",
    "TeamOut",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "UserCreate",
    "UserOut",
    "UserUpdate",
    "VisibilityName",
]

PermissionName = Literal["none", "read", "write", "admin"]
RoleName = Literal["owner", "member"]
VisibilityName = Literal["public", "private"]
ScopeName = Literal["read", "write", "delete"]

# The distribution spec's name grammar (see identity.base.check_name, reference.py), so that
# the OpenAPI document says what is accepted; the service layer checks again.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=f"^{_COMPONENT}$")]
RepositoryName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=f"^{_COMPONENT}(?:/{_COMPONENT})*$")
]
Pattern = Annotated[str, Field(min_length=1, max_length=255)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Description = Annotated[str, Field(max_length=4096)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- users --------------------------------------------------------------------------------------


class UserOut(_Response):
    """A user as the caller may see it: names are public (they are namespaces), but whether an
    account is an administrator's or disabled is shown only to site administrators and to the
    user itself; to anyone else those fields are null (present, so the shape never varies)."""

    name: str
    is_admin: bool | None = Field(description="Null unless the caller is this user or an admin.")
    disabled: bool | None = Field(description="Null unless the caller is this user or an admin.")
    robot: bool
    created_at: datetime


class UserCreate(_Request):
    name: Name
    password: Password
    is_admin: bool = False


class UserUpdate(_Request):
    """Fields left out are left as they are."""

    disabled: bool | None = None
    is_admin: bool | None = None


class SignUpIn(_Request):
    """An account of one's own, where the site allows signing up (``ui.signup``)."""

    name: Name
    password: Annotated[str, Field(min_length=8, max_length=1024)]  # hub.signup.MIN_PASSWORD


class PasswordChange(_Request):
    current_password: Annotated[str, Field(max_length=1024)]
    new_password: Password


# -- organizations and teams --------------------------------------------------------------------


class OrganizationOut(_Response):
    name: str
    default_permission: PermissionName
    created_at: datetime


class OrganizationCreate(_Request):
    name: Name
    owner: Name | None = Field(
        default=None, description="The first owner (default: the caller; required for admins)."
    )
    default_permission: PermissionName = "none"


class OrganizationUpdate(_Request):
    default_permission: PermissionName


class MemberOut(_Response):
    user: str
    role: RoleName


class MemberIn(_Request):
    role: RoleName = "member"


class TeamOut(_Response):
    organization: str
    name: str
    members: list[str]


class TeamCreate(_Request):
    name: Name


class TeamMemberIn(_Request):
    user: Name


# -- repositories -------------------------------------------------------------------------------


class RepositoryOut(_Response):
    name: str
    namespace: str | None = Field(description="None for the site's official namespace.")
    official: bool
    visibility: VisibilityName
    description: str | None
    created_at: datetime
    permission: PermissionName = Field(description="What the caller may do on it.")


class RepositoryPage(_Response):
    repositories: list[RepositoryOut]
    next: str | None = Field(description="Pass as `after` for the next page; None at the end.")


class RepositoryCreate(_Request):
    name: RepositoryName
    visibility: VisibilityName | None = Field(
        default=None, description="Default: auth.builtin.defaultvisibility."
    )
    description: Description | None = None


class RepositoryUpdate(_Request):
    """Fields left out are left as they are; an empty description clears it."""

    visibility: VisibilityName | None = None
    description: Description | None = None


class ReadmeOut(_Response):
    repository: str
    markdown: str = Field(description="As the owner wrote it; empty when there is none.")
    updated_at: datetime | None


class ReadmeSet(_Request):
    """The whole README, replacing the one before; an empty one removes it."""

    markdown: Annotated[str, Field(max_length=256 * 1024)]  # hub.readmes.MAX_README


# -- permissions --------------------------------------------------------------------------------


class GrantOut(_Response):
    pattern: str
    user: str | None = None
    team: str | None = Field(default=None, description="organization/team")
    permission: PermissionName


class GrantIn(_Request):
    """A permission on a repository, or on a pattern (``*`` within a path component, ``**``
    across them), for exactly one of ``user`` and ``team`` (``organization/team``).
    Permission ``none`` revokes."""

    pattern: Pattern
    user: Annotated[str, Field(min_length=1, max_length=140)] | None = None
    team: Annotated[str, Field(min_length=3, max_length=129)] | None = None
    permission: PermissionName


# -- tokens and robots --------------------------------------------------------------------------


class TokenOut(_Response):
    user: str
    name: str
    scopes: list[ScopeName]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class TokenCreate(_Request):
    name: Name
    scopes: Annotated[list[ScopeName], Field(min_length=1, max_length=3)]
    expires: Annotated[str, Field(max_length=16)] | None = Field(
        default=None, description="Lifetime such as 12h, 30d, 4w, 1y; default: never expires."
    )


class TokenCreated(_Response):
    token: TokenOut
    secret: str = Field(description="Shown this once; use it as the password to log in.")


class RobotOut(_Response):
    name: str
    organization: str
    created_at: datetime


class RobotIn(_Request):
    name: Name


class RobotCreated(_Response):
    robot: RobotOut
    secret: str = Field(description="The robot's token, shown this once.")


# -- audit --------------------------------------------------------------------------------------


class AuditEventOut(_Response):
    id: int
    time: datetime
    action: str
    outcome: str
    actor: str | None
    client_address: str | None
    repository: str | None
    digest: str | None
    tag: str | None
    detail: str | None


class AuditPage(_Response):
    events: list[AuditEventOut]
    next: int | None = Field(description="Pass as `after` for the next page; None at the end.")


# -- storage lifecycle --------------------------------------------------------------------------

# Checked again by the lifecycle service (letters, digits, . _ - / : @ + and the wildcards).
GlobPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="A glob: * matches any run of characters (/ included: library/* is a "
        "namespace), ? one character.",
    ),
]
QuotaScopeName = Literal["namespace", "repository"]


class ImmutableRuleCreate(_Request):
    """Tags matching ``tag_pattern`` in repositories matching ``repository_pattern`` may not be
    moved or deleted once set."""

    repository_pattern: GlobPattern
    tag_pattern: GlobPattern


class ImmutableRuleOut(_Response):
    id: int
    repository_pattern: str
    tag_pattern: str
    created_at: datetime


class QuotaSet(_Request):
    limit: (
        Annotated[int, Field(ge=0, le=1 << 62)] | Annotated[str, Field(min_length=1, max_length=32)]
    ) = Field(description="Bytes, as a number or a size such as 500MB (powers of 1000) or 10GiB.")


class QuotaOut(_Response):
    scope: QuotaScopeName
    name: str
    limit_bytes: int
    created_at: datetime


class RetentionPolicyCreate(_Request):
    """Of the tags matching ``tag_pattern`` in matching repositories, keep the ``keep_last``
    most recently pushed, those pushed or pulled within ``keep_within``, and those matching
    ``keep_pattern``; the rest go when retention runs. Give keep_last or keep_within."""

    repository_pattern: GlobPattern
    tag_pattern: GlobPattern = "*"
    keep_last: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    keep_within: (
        Annotated[int, Field(ge=1, le=100 * 366 * 86400)]
        | Annotated[str, Field(min_length=1, max_length=32)]
        | None
    ) = Field(default=None, description="Seconds, or a period such as 30d, 2w, 12h.")
    keep_pattern: GlobPattern | None = None


class RetentionPolicyOut(_Response):
    id: int
    repository_pattern: str
    tag_pattern: str
    keep_last: int | None
    keep_within: int | None = Field(description="Seconds.")
    keep_pattern: str | None
    created_at: datetime | None


class RetentionRun(_Request):
    dry_run: bool = Field(description="True: only report what would be removed.")
    policy: Annotated[int, Field(ge=1, le=(1 << 62))] | None = Field(
        default=None, description="Apply only this policy (default: every policy)."
    )


class RemovalOut(_Response):
    repository: str
    tag: str
    digest: str
    policies: list[int]


class RetentionReportOut(_Response):
    dry_run: bool
    removed: list[RemovalOut] = Field(description="Removed tags (would be, on a dry run).")
    kept: int = Field(description="Tags a policy governed and kept.")
    skipped: int = Field(description="Removals that lost to a push or an immutability rule.")


class TagUsageOut(_Response):
    tag: str
    digest: str
    pushed_at: datetime
    pushed_by: str | None = Field(description="Who pushed it, as the audit log recorded.")
    pulls: int
    last_pulled_at: datetime | None


class RepositoryUsageSummary(_Response):
    repository: str
    bytes: int = Field(description="Bytes of the blobs it links.")
    blobs: int
    quota: int | None = Field(description="Its own quota in bytes, if any.")


class RepositoryUsageOut(RepositoryUsageSummary):
    namespace: str
    tags: list[TagUsageOut]


class NamespaceUsageOut(_Response):
    namespace: str
    bytes: int = Field(description="Each blob counted once, however many repositories link it.")
    blobs: int
    quota: int | None
    repositories: list[RepositoryUsageSummary]
