"""Managing organizations: creating them, their default permission and their members."""

from __future__ import annotations

from dockyard.errors import Denied, RequestInvalid, ResourceUnknown
from dockyard.hub.manage_base import ManagementBase, translated, valid_name
from dockyard.hub.models import MemberOut, OrganizationOut, PermissionName, RoleName
from dockyard.identity.base import ROBOT_SEPARATOR, Organization, Permission, Role

__all__ = ["OrganizationManagement"]


def _organization_out(organization: Organization) -> OrganizationOut:
    label: PermissionName = organization.default_permission.label  # type: ignore[assignment]
    return OrganizationOut(
        name=organization.name, default_permission=label, created_at=organization.created_at
    )


class OrganizationManagement(ManagementBase):
    """Organization operations of :class:`~dockyard.hub.management.Management`."""

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
        valid_name(name)
        with translated():
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
        with translated():
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
        with translated():
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
        with translated():
            await self.store.remove_member(organization, user)
        await self.record_action(
            "organization.member.remove", f"organization {organization}: {user}"
        )
