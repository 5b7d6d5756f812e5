"""Dockyard's token server, without HTTP: who is asking, what they get, and the signed token.

A token is a JWT as the Docker token specification describes it: ``iss`` (the issuer),
``sub`` (the user; absent for anonymous), ``aud`` (the service), ``exp``/``nbf``/``iat``,
a unique ``jti``, and an ``access`` claim listing, for each resource asked for, exactly the
actions granted (possibly none). Refresh tokens (``offline`` requests) are opaque random
strings; only their SHA-256 is stored, and they stop working when their user is disabled.

A login (:meth:`TokenIssuer.authenticate`) takes a password or a personal access token in
the password's place; a token's scopes cap the actions granted, and a login with a token
gets no refresh token (which would outlive the token's revocation and escape its cap).
Failed logins are limited (:mod:`dockyard.identity.limits`), and every login, good or bad,
is written to the audit log.

With a directory (LDAP, :mod:`dockyard.identity.external`), a name that has no local account,
or whose account the directory made, is checked by the directory; local accounts keep their
local passwords. A directory user gets no refresh token: it would outlive the user's removal
from the directory, where a password sent again is checked again. A directory that cannot
answer makes the login a ``503 UNAVAILABLE`` (logged and audited), never a failure counted
against the user.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dockyard.auth.base import Access
from dockyard.auth.signing import SigningKeys
from dockyard.errors import Unavailable
from dockyard.identity.authority import Authority
from dockyard.identity.base import AuditEvent, IdentityStore
from dockyard.identity.external import DirectoryAccounts, DirectoryUnavailable, is_external
from dockyard.identity.limits import LoginLimiter
from dockyard.identity.passwords import Passwords
from dockyard.identity.tokens import looks_like_token, secret_hash

__all__ = ["BadCredentials", "IssuedToken", "Login", "TokenIssuer", "TooManyFailures"]

# The spec's floor: "a token should never be returned with less than 60 seconds to live".
MIN_LIFETIME = 60.0

log = logging.getLogger("dockyard.auth.issuer")

# Refused actions that go to the audit log: the writes. A refused pull is what a private
# repository looks like from outside, asked for all day by clients probing for credentials.
_AUDITED_REFUSALS = frozenset({"push", "delete", "*"})


class BadCredentials(Exception):
    """A wrong user name or password, a disabled user, or an unknown refresh token."""


class TooManyFailures(Exception):
    """Too many failed logins lately, for the account from this address or for the address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Login:
    """Who logged in; with an access token, the actions its scopes allow (else None), and
    what checked the credentials (for the audit log)."""

    subject: str
    cap: frozenset[str] | None = None
    token: str | None = None
    source: str = "password"


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
        limiter: LoginLimiter | None = None,
        directory: DirectoryAccounts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.service = service
        self.keys = keys
        self.lifetime = max(int(lifetime), int(MIN_LIFETIME))
        self.store = store
        self.authority = authority
        self.passwords = passwords
        self.limiter = limiter
        self.directory = directory
        self.clock = clock

    async def login(self, user: str, password: str) -> str:
        """The user's name if the password is right and the user enabled; else
        :class:`BadCredentials`, after the same work whatever was wrong (locally; a
        directory's answer takes what it takes); :class:`~dockyard.errors.Unavailable` if
        the directory cannot answer."""
        return (await self._password_login(user, password)).subject

    async def _password_login(self, user: str, password: str) -> Login:
        credentials = await self.store.credentials(user)
        if self.directory is not None and is_external(credentials):
            try:
                name = await self.directory.login(user, password)
            except DirectoryUnavailable as exc:
                log.warning("login of %r: the user directory is unavailable: %s", user[:100], exc)
                raise Unavailable(
                    message="the user directory is unavailable; try again later",
                    headers={"Retry-After": "10"},
                ) from exc
            if name is None:
                raise BadCredentials(user)
            return Login(name, source="ldap")
        stored = credentials.password_hash if credentials is not None else None
        if not await self.passwords.averify(stored, password):
            raise BadCredentials(user)
        assert credentials is not None
        if credentials.user.disabled:
            raise BadCredentials(user)
        return Login(credentials.user.name)

    async def authenticate(self, user: str, password: str, address: str | None = None) -> Login:
        """Log ``user`` in with a password or an access token, from ``address``:
        :class:`TooManyFailures` while failures are over the limit (nothing is checked then),
        :class:`BadCredentials` if wrong. Either way the attempt is audited."""
        if self.limiter is not None:
            wait = await self.limiter.retry_after(user, address)
            if wait is not None:
                await self._audit("login", "throttled", user, address)
                raise TooManyFailures(wait)
        try:
            login = await self._check(user, password)
        except Unavailable as exc:
            await self._audit("login", "unavailable", user, address, str(exc.__cause__)[:500])
            raise
        except BadCredentials:
            if self.limiter is not None:
                await self.limiter.failed(user, address)
            await self._audit("login", "failure", user, address)
            raise
        if self.limiter is not None:
            await self.limiter.succeeded(user, address)
        detail = f"token {login.token}" if login.token is not None else login.source
        await self._audit("login", "success", user, address, detail)
        return login

    async def _check(self, user: str, password: str) -> Login:
        if looks_like_token(password):
            now = datetime.fromtimestamp(self.clock(), UTC)
            used = await self.store.use_access_token(secret_hash(password), now)
            if used is not None and used.user == user:
                return Login(used.user, used.actions, used.token)
        return await self._password_login(user, password)

    async def _audit(
        self,
        action: str,
        outcome: str,
        actor: str | None,
        address: str | None,
        detail: str | None = None,
        repository: str | None = None,
    ) -> None:
        await self.store.add_audit_event(
            AuditEvent(
                time=datetime.fromtimestamp(self.clock(), UTC),
                action=action,
                outcome=outcome,
                actor=actor[:200] if actor is not None else None,
                client_address=address,
                repository=repository[:300] if repository is not None else None,
                detail=detail,
            )
        )

    async def _audit_refusals(
        self,
        subject: str,
        asked: Sequence[Access],
        granted: Sequence[Access],
        address: str | None,
    ) -> None:
        allowed = {(a.type, a.name): a.actions for a in granted}
        refused: dict[str, set[str]] = {}
        for access in asked:
            if access.type != "repository":
                continue
            kept = allowed.get((access.type, access.name), frozenset())
            missing = (access.actions & _AUDITED_REFUSALS) - kept
            refused.setdefault(access.name, set()).update(missing)
        for repository, actions in sorted(refused.items()):
            for action in sorted(actions):
                await self._audit(action, "denied", subject, address, repository=repository)

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
        cap: frozenset[str] | None = None,
        address: str | None = None,
    ) -> IssuedToken:
        """A token for ``subject`` (None: anonymous) granting what it may have of ``wanted``,
        and of repositories no more than ``cap`` (an access token's scopes); with
        ``offline``, also a new refresh token (or ``refresh_token``, handed back), unless
        capped. A signed-in subject refused a push or a delete is audited (from ``address``);
        anonymous refusals are not, or anyone could fill the log."""
        asked = list(wanted)
        principal = await self.authority.principal(subject)
        if subject is not None and principal is None:
            # Disabled (or deleted) since it authenticated.
            raise BadCredentials(subject)
        if cap is not None:
            # Capped before deciding: a push the cap forbids must not create the repository.
            wanted = [
                Access(a.type, a.name, a.actions & cap) if a.type == "repository" else a
                for a in wanted
            ]
            offline = False
        granted = await self.authority.decide(principal, wanted)
        if subject is not None:
            await self._audit_refusals(subject, asked, granted, address)
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
        if offline and subject is not None and refresh_token is None and self.directory is not None:
            offline = not is_external(await self.store.credentials(subject))
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
