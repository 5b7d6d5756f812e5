"""Dockyard's token server, without HTTP: who is asking, what they get, and the signed token.

A token is a JWT as the Docker token specification describes it: ``iss`` (the issuer),
``sub`` (the user; absent for anonymous), ``aud`` (the service), ``exp``/``nbf``/``iat``,
a unique ``jti``, and an ``access`` claim listing, for each resource asked for, exactly the
actions granted (possibly none). Refresh tokens (``offline`` requests) are opaque random
strings; only their SHA-256 is stored, and they stop working when their user is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dockyard.auth.base import Access
from dockyard.auth.signing import SigningKeys
from dockyard.identity.authority import Authority
from dockyard.identity.base import IdentityStore
from dockyard.identity.passwords import Passwords

__all__ = ["BadCredentials", "IssuedToken", "TokenIssuer"]

# The spec's floor: "a token should never be returned with less than 60 seconds to live".
MIN_LIFETIME = 60.0


class BadCredentials(Exception):
    """A wrong user name or password, a disabled user, or an unknown refresh token."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime
    access: list[Access]
    refresh_token: str | None = None


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class TokenIssuer:
    def __init__(
        self,
        *,
        issuer: str,
        service: str,
        keys: SigningKeys,
        lifetime: float,
        store: IdentityStore,
        authority: Authority,
        passwords: Passwords,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.service = service
        self.keys = keys
        self.lifetime = max(int(lifetime), int(MIN_LIFETIME))
        self.store = store
        self.authority = authority
        self.passwords = passwords
        self.clock = clock

    async def login(self, user: str, password: str) -> str:
        """The user's name if the password is right and the user enabled; else
        :class:`BadCredentials`, after the same work whatever was wrong."""
        credentials = await self.store.credentials(user)
        stored = credentials.password_hash if credentials is not None else None
        if not await self.passwords.averify(stored, password):
            raise BadCredentials(user)
        assert credentials is not None
        if credentials.user.disabled:
            raise BadCredentials(user)
        return credentials.user.name

    async def redeem(self, refresh_token: str) -> str:
        """The user a refresh token was issued to; :class:`BadCredentials` if none."""
        user = await self.store.refresh_token_user(_digest(refresh_token), self.service)
        if user is None:
            raise BadCredentials("refresh token")
        return user

    async def issue(
        self,
        subject: str | None,
        wanted: Sequence[Access],
        *,
        offline: bool = False,
        client_id: str = "",
        refresh_token: str | None = None,
    ) -> IssuedToken:
        """A token for ``subject`` (None: anonymous) granting what it may have of ``wanted``;
        with ``offline``, also a new refresh token (or ``refresh_token``, handed back)."""
        principal = await self.authority.principal(subject)
        if subject is not None and principal is None:
            # Disabled (or deleted) since it authenticated.
            raise BadCredentials(subject)
        granted = await self.authority.decide(principal, wanted)
        now = int(self.clock())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [
                {"type": a.type, "name": a.name, "actions": sorted(a.actions)} for a in granted
            ],
        }
        if subject is not None:
            claims["sub"] = subject
        if offline and subject is not None and refresh_token is None:
            refresh_token = secrets.token_urlsafe(32)
            await self.store.add_refresh_token(
                _digest(refresh_token), subject, self.service, client_id
            )
        return IssuedToken(
            token=self.keys.sign(claims),
            expires_in=self.lifetime,
            issued_at=datetime.fromtimestamp(now, UTC),
            access=granted,
            refresh_token=refresh_token if subject is not None else None,
        )
