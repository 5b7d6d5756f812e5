"""``/api/v1/users``: accounts, and the caller's own (``/api/v1/user``)."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import PasswordChange, UserCreate, UserOut, UserUpdate

__all__ = ["OPERATIONS"]


async def list_users(call: Call) -> list[UserOut]:
    return await call.hub.list_users()


async def create_user(call: Call) -> UserOut:
    body = call.model(UserCreate)
    return await call.hub.create_user(body.name, body.password, is_admin=body.is_admin)


async def get_user(call: Call) -> UserOut:
    return await call.hub.get_user(call.path("user"))


async def update_user(call: Call) -> UserOut:
    body = call.model(UserUpdate)
    return await call.hub.update_user(
        call.path("user"), disabled=body.disabled, is_admin=body.is_admin
    )


async def get_current_user(call: Call) -> UserOut:
    return await call.hub.get_user(call.hub.actor.name)


async def change_password(call: Call) -> None:
    body = call.model(PasswordChange)
    await call.hub.change_password(body.current_password, body.new_password)


OPERATIONS = [
    Operation(
        "GET", "/users", list_users, "List users (site admins)", "users", None, list[UserOut]
    ),
    Operation(
        "POST",
        "/users",
        create_user,
        "Create a user (site admins)",
        "users",
        UserCreate,
        UserOut,
        201,
    ),
    Operation(
        "GET",
        "/users/{user}",
        get_user,
        "Get a user (is_admin and disabled: for site admins and the user itself)",
        "users",
        None,
        UserOut,
    ),
    Operation(
        "PATCH",
        "/users/{user}",
        update_user,
        "Disable, enable, make admin (site admins)",
        "users",
        UserUpdate,
        UserOut,
    ),
    Operation("GET", "/user", get_current_user, "The caller", "users", None, UserOut),
    Operation(
        "PUT",
        "/user/password",
        change_password,
        "Change the caller's password",
        "users",
        PasswordChange,
        None,
        204,
    ),
]
