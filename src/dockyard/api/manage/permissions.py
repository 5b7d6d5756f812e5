"""``/api/v1/permissions``: grants to users and teams on repositories and patterns."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation, Query
from dockyard.hub.models import GrantIn, GrantOut

__all__ = ["OPERATIONS"]


async def list_permissions(call: Call) -> list[GrantOut]:
    return await call.hub.grants(repository=call.text("repository"))


async def set_permission(call: Call) -> GrantOut:
    return await call.hub.grant(call.model(GrantIn))


OPERATIONS = [
    Operation(
        "GET",
        "/permissions",
        list_permissions,
        "List the grants the caller may manage",
        "permissions",
        None,
        list[GrantOut],
        200,
        (Query("repository", description="Only the grants that cover this repository."),),
    ),
    Operation(
        "PUT",
        "/permissions",
        set_permission,
        "Grant a permission, or revoke it with permission none",
        "permissions",
        GrantIn,
        GrantOut,
    ),
]
