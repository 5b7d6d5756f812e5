"""Managing personal access tokens (their secrets are shown once, at creation)."""

from __future__ import annotations

from dockyard.errors import RequestInvalid, ResourceUnknown
from dockyard.hub.manage_base import ManagementBase, translated, valid_name
from dockyard.hub.models import ScopeName, TokenCreated, TokenOut
from dockyard.identity.base import AccessToken, TokenScope
from dockyard.identity.tokens import new_secret, parse_lifetime, secret_hash

__all__ = ["TokenManagement"]


def _token_out(token: AccessToken) -> TokenOut:
    scopes: list[ScopeName] = sorted(scope.value for scope in token.scopes)
    return TokenOut(
        user=token.user,
        name=token.name,
        scopes=scopes,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


class TokenManagement(ManagementBase):
    """Access token operations of :class:`~dockyard.hub.management.Management`."""

    def _token_user(self, user: str | None) -> str:
        self._require_person()
        target = user or self.actor.name
        self._require_self_or_admin(target)
        return target

    async def create_token(
        self,
        name: str,
        scopes: list[ScopeName],
        *,
        expires: str | None = None,
        user: str | None = None,
    ) -> TokenCreated:
        """A new personal access token of the actor (or, for site administrators, of
        ``user``); its secret is in the answer and nowhere else."""
        target = self._token_user(user)
        valid_name(name)
        if not scopes:
            raise RequestInvalid(message="a token needs at least one scope")
        try:
            wanted = frozenset(TokenScope.parse(s) for s in scopes)
            lifetime = parse_lifetime(expires) if expires else None
        except ValueError as error:
            raise RequestInvalid(message=str(error)) from None
        expires_at = self.clock().replace(microsecond=0) + lifetime if lifetime else None
        secret = new_secret()
        with translated():
            created = await self.store.create_access_token(
                target, name, secret_hash(secret), wanted, expires_at
            )
        await self.record_action(
            "token.create", f"token {name} of {target} ({','.join(sorted(scopes))})"
        )
        return TokenCreated(token=_token_out(created), secret=secret)

    async def tokens(self, *, user: str | None = None) -> list[TokenOut]:
        target = self._token_user(user)
        if await self.store.get_user(target) is None:
            raise ResourceUnknown(message=f"no user {target[:100]!r}")
        return [_token_out(t) for t in await self.store.access_tokens(target)]

    async def revoke_token(self, name: str, *, user: str | None = None) -> None:
        target = self._token_user(user)
        with translated():
            await self.store.revoke_access_token(target, name)
        await self.record_action("token.revoke", f"token {name} of {target}")
