"""``/api/v1/organizations/{organization}/teams``: teams and their members."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import TeamCreate, TeamMemberIn, TeamOut

__all__ = ["OPERATIONS"]

TEAMS = "/organizations/{organization}/teams"


async def create_team(call: Call) -> TeamOut:
    return await call.hub.create_team(call.path("organization"), call.model(TeamCreate).name)


async def list_teams(call: Call) -> list[TeamOut]:
    return await call.hub.teams(call.path("organization"))


async def get_team(call: Call) -> TeamOut:
    return await call.hub.get_team(call.path("organization"), call.path("team"))


async def add_team_member(call: Call) -> TeamOut:
    return await call.hub.add_team_member(
        call.path("organization"), call.path("team"), call.model(TeamMemberIn).user
    )


async def remove_team_member(call: Call) -> None:
    await call.hub.remove_team_member(
        call.path("organization"), call.path("team"), call.path("user")
    )


OPERATIONS = [
    Operation(
        "POST", TEAMS, create_team, "Create a team (owners)", "teams", TeamCreate, TeamOut, 201
    ),
    Operation("GET", TEAMS, list_teams, "List teams (members)", "teams", None, list[TeamOut]),
    Operation("GET", f"{TEAMS}/{{team}}", get_team, "Get a team (members)", "teams", None, TeamOut),
    Operation(
        "POST",
        f"{TEAMS}/{{team}}/members",
        add_team_member,
        "Add an organization member to the team (owners)",
        "teams",
        TeamMemberIn,
        TeamOut,
    ),
    Operation(
        "DELETE",
        f"{TEAMS}/{{team}}/members/{{user}}",
        remove_team_member,
        "Remove a member from the team (owners)",
        "teams",
        None,
        None,
        204,
    ),
]
