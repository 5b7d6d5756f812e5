"""``/api/v1/user/tokens``: the caller's personal access tokens (secrets shown once)."""

from __future__ import annotations

from dockyard.api.manage.base import Call, Operation
from dockyard.hub.models import TokenCreate, TokenCreated, TokenOut

__all__ = ["OPERATIONS"]

TOKENS = "/user/tokens"


async def create_token(call: Call) -> TokenCreated:
    body = call.model(TokenCreate)
    return await call.hub.create_token(body.name, list(body.scopes), expires=body.expires)


async def list_tokens(call: Call) -> list[TokenOut]:
    return await call.hub.tokens()


async def revoke_token(call: Call) -> None:
    await call.hub.revoke_token(call.path("token"))


OPERATIONS = [
    Operation(
        "POST",
        TOKENS,
        create_token,
        "Create a token; its secret is shown this once",
        "tokens",
        TokenCreate,
        TokenCreated,
        201,
    ),
    Operation(
        "GET", TOKENS, list_tokens, "List the caller's tokens", "tokens", None, list[TokenOut]
    ),
    Operation(
        "DELETE",
        f"{TOKENS}/{{token}}",
        revoke_token,
        "Revoke a token",
        "tokens",
        None,
        None,
        204,
    ),
]
