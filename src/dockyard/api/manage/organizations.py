"""``/api/v1/organizations``: organizations and their members."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import (
    MemberIn,
    MemberOut,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
)

__all__ = ["OPERATIONS"]

ORG = "/organizations/{organization}"


async def create_organization(call: Call) -> OrganizationOut:
    body = call.model(OrganizationCreate)
    return await call.hub.create_organization(
        body.name, owner=body.owner, default_permission=body.default_permission
    )


async def get_organization(call: Call) -> OrganizationOut:
    return await call.hub.get_organization(call.path("organization"))


async def update_organization(call: Call) -> OrganizationOut:
    body = call.model(OrganizationUpdate)
    return await call.hub.set_default_permission(call.path("organization"), body.default_permission)


async def list_members(call: Call) -> list[MemberOut]:
    return await call.hub.members(call.path("organization"))


async def set_member(call: Call) -> MemberOut:
    body = call.model(MemberIn)
    return await call.hub.set_member(call.path("organization"), call.path("user"), body.role)


async def remove_member(call: Call) -> None:
    await call.hub.remove_member(call.path("organization"), call.path("user"))


OPERATIONS = [
    Operation(
        "POST",
        "/organizations",
        create_organization,
        "Create an organization",
        "organizations",
        OrganizationCreate,
        OrganizationOut,
        201,
    ),
    Operation(
        "GET",
        ORG,
        get_organization,
        "Get an organization",
        "organizations",
        None,
        OrganizationOut,
    ),
    Operation(
        "PATCH",
        ORG,
        update_organization,
        "Set the members' default permission (owners)",
        "organizations",
        OrganizationUpdate,
        OrganizationOut,
    ),
    Operation(
        "GET",
        f"{ORG}/members",
        list_members,
        "List members (members)",
        "organizations",
        None,
        list[MemberOut],
    ),
    Operation(
        "PUT",
        f"{ORG}/members/{{user}}",
        set_member,
        "Add a member or set its role (owners)",
        "organizations",
        MemberIn,
        MemberOut,
    ),
    Operation(
        "DELETE",
        f"{ORG}/members/{{user}}",
        remove_member,
        "Remove a member (owners)",
        "organizations",
        None,
        None,
        204,
    ),
]
