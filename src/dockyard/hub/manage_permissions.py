"""Managing permission grants on repositories and repository patterns, to users and teams."""

from __future__ import annotations

from dockyard.errors import Denied, NameInvalid, NameUnknown, RequestInvalid
from dockyard.hub.manage_base import ManagementBase, translated
from dockyard.hub.models import GrantIn, GrantOut, PermissionName
from dockyard.identity.base import (
    Permission,
    PermissionGrant,
    Principal,
    Subject,
    TeamSubject,
    UserSubject,
)
from dockyard.identity.policy import matches, namespace_of, permission
from dockyard.reference import validate_name

__all__ = ["PermissionManagement"]


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


class PermissionManagement(ManagementBase):
    """Permission operations of :class:`~dockyard.hub.management.Management`."""

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
        with translated():
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
