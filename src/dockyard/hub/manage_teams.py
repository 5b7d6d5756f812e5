"""Managing an organization's teams and their members."""

from __future__ import annotations

from dockyard.errors import ResourceUnknown
from dockyard.hub.manage_base import ManagementBase, translated, valid_name
from dockyard.hub.models import TeamOut

__all__ = ["TeamManagement"]


class TeamManagement(ManagementBase):
    """Team operations of :class:`~dockyard.hub.management.Management`."""

    async def create_team(self, organization: str, team: str) -> TeamOut:
        await self._require_owner(organization)
        valid_name(team)
        with translated():
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
        with translated():
            await self.store.add_team_member(organization, team, user)
        await self.record_action("team.member", f"team {organization}/{team}: {user}")
        return await self.get_team(organization, team)

    async def remove_team_member(self, organization: str, team: str, user: str) -> TeamOut:
        await self._require_owner(organization)
        found = await self.get_team(organization, team)
        if user not in found.members:
            raise ResourceUnknown(message=f"{user[:100]!r} is not in team {team!r}")
        with translated():
            await self.store.remove_team_member(organization, team, user)
        await self.record_action("team.member.remove", f"team {organization}/{team}: {user}")
        return await self.get_team(organization, team)
