"""``/api/v1/organizations/{organization}/robots``: robot accounts (owners)."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import RobotCreated, RobotIn, RobotOut

__all__ = ["OPERATIONS"]

ROBOTS = "/organizations/{organization}/robots"


async def create_robot(call: Call) -> RobotCreated:
    return await call.hub.create_robot(call.path("organization"), call.model(RobotIn).name)


async def list_robots(call: Call) -> list[RobotOut]:
    return await call.hub.robots(call.path("organization"))


async def delete_robot(call: Call) -> None:
    await call.hub.delete_robot(call.path("organization"), call.path("robot"))


OPERATIONS = [
    Operation(
        "POST",
        ROBOTS,
        create_robot,
        "Create a robot; its token is shown this once",
        "robots",
        RobotIn,
        RobotCreated,
        201,
    ),
    Operation("GET", ROBOTS, list_robots, "List robots", "robots", None, list[RobotOut]),
    Operation(
        "DELETE",
        f"{ROBOTS}/{{robot}}",
        delete_robot,
        "Delete a robot with its token",
        "robots",
        None,
        None,
        204,
    ),
]
