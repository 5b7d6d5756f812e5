"""Managing an organization's robots, each with one token."""

from __future__ import annotations

from dockyard.hub.manage_base import ManagementBase, translated, valid_name
from dockyard.hub.models import RobotCreated, RobotOut
from dockyard.identity.base import ROBOT_SEPARATOR, TokenScope
from dockyard.identity.commands import ROBOT_TOKEN
from dockyard.identity.tokens import new_secret, secret_hash

__all__ = ["ROBOT_TOKEN", "RobotManagement"]


class RobotManagement(ManagementBase):
    """Robot operations of :class:`~dockyard.hub.management.Management`."""

    async def create_robot(self, organization: str, name: str) -> RobotCreated:
        """The robot ``organization+name`` and its token's secret (all scopes, no expiry:
        what it may do is what it is granted), shown this once."""
        await self._require_owner(organization)
        valid_name(name)
        secret = new_secret()
        with translated():
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
        with translated():
            await self.store.delete_robot(organization, name)
        await self.record_action("robot.delete", f"robot {organization}{ROBOT_SEPARATOR}{name}")
