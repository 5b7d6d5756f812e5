"""Who calls the management API: ``Authorization: Basic`` with a password or a personal
access token (or a robot's token) in the password's place, or ``Bearer`` with such a token.
The registry's own Bearer JWTs are not taken here.

Failed logins count against the same limits as the token server's (429 with
``Retry-After`` past them) and are audited; successful ones are not (every API request
would be). A token whose scopes lack ``write`` may only read.

The API exists only under ``auth.builtin``; under any other auth every route answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from dockyard.api.base import context
from dockyard.auth.builtin import BuiltinAccess
from dockyard.auth.challenge import basic_challenge, basic_credentials, bearer_token
from dockyard.auth.issuer import BadCredentials, TokenIssuer
from dockyard.errors import EndpointUnknown, TooManyRequests, Unauthorized
from dockyard.hub.content import CoreContent, RepositoryContent
from dockyard.hub.management import Management, ManagementSettings
from dockyard.identity.base import AuditEvent, Principal, TokenScope
from dockyard.identity.sql import SqlIdentityStore
from dockyard.identity.tokens import looks_like_token, secret_hash
from dockyard.observability.accesslog import SUBJECT_KEY

__all__ = ["Login", "anonymous", "authenticate", "builtin"]

REALM = "dockyard management API"
BEARER = "(bearer token)"
# Acts for callers of the few operations open to anyone (signing up): no roles, no grants,
# and a "+" is in no user's name.
NOBODY = Principal(name="+anonymous", is_admin=False, organizations={}, grants=())


@dataclass(frozen=True, slots=True)
class Login:
    hub: Management
    may_change: bool
    """False for a token whose scopes allow reading only."""


def builtin(request: Request) -> tuple[BuiltinAccess, TokenIssuer]:
    """The ``auth.builtin`` controller and its token server; 404 without them."""
    access = context(request).access
    if not isinstance(access, BuiltinAccess) or access.issuer is None:
        raise EndpointUnknown(message="the management API needs auth.builtin")
    return access, access.issuer


def _refused(message: str = "authentication required") -> Unauthorized:
    return Unauthorized(message=message, headers={"WWW-Authenticate": basic_challenge(REALM)})


async def _failed(issuer: TokenIssuer, who: str, client: str | None) -> Unauthorized:
    if issuer.limiter is not None:
        await issuer.limiter.failed(who, client)
    await issuer.store.add_audit_event(
        AuditEvent(
            time=datetime.now(UTC),
            action="api.login",
            outcome="failure",
            actor=who[:200],
            client_address=client,
        )
    )
    return _refused("invalid credentials")


async def _throttle(issuer: TokenIssuer, who: str, client: str | None) -> None:
    if issuer.limiter is None:
        return
    wait = await issuer.limiter.retry_after(who, client)
    if wait is not None:
        raise TooManyRequests(
            message="too many failed logins; try again later",
            headers={"Retry-After": str(wait)},
        )


async def _token(issuer: TokenIssuer, secret: str) -> tuple[str, frozenset[TokenScope]] | None:
    if not looks_like_token(secret) or len(secret) > 200:
        return None
    used = await issuer.store.use_access_token(secret_hash(secret), datetime.now(UTC))
    return (used.user, used.scopes) if used is not None else None


def _content(issuer: TokenIssuer, request: Request) -> RepositoryContent | None:
    store = issuer.store
    if not isinstance(store, SqlIdentityStore):
        return None
    registry = context(request).registry
    return CoreContent(store.database, registry.manifests, registry.policy)


def anonymous(request: Request) -> Login:
    """A caller without credentials, for operations open to anyone (404 without
    ``auth.builtin``)."""
    access, issuer = builtin(request)
    hub = Management(
        issuer.store,
        NOBODY,
        settings=ManagementSettings(default_visibility=access.settings.default_visibility),
        passwords=issuer.passwords,
        client_address=request.client.host if request.client else None,
    )
    return Login(hub, may_change=True)


async def authenticate(request: Request) -> Login:
    """The caller's ``Login``, or 401 (404 without ``auth.builtin``)."""
    access, issuer = builtin(request)
    client = request.client.host if request.client else None
    header = request.headers.get("authorization", "").strip()
    scheme = header.partition(" ")[0].lower()
    scopes: frozenset[TokenScope] | None = None
    if scheme == "basic":
        credentials = basic_credentials(request.headers)
        if credentials is None:
            raise _refused("malformed Basic credentials")
        who, secret = credentials
        await _throttle(issuer, who, client)
        used = await _token(issuer, secret)
        if used is not None and used[0] == who:
            scopes = used[1]
        else:
            try:
                who = await issuer.login(who, secret)
            except BadCredentials:
                raise await _failed(issuer, who, client) from None
    elif scheme == "bearer":
        secret = bearer_token(request.headers) or ""
        await _throttle(issuer, BEARER, client)
        used = await _token(issuer, secret)
        if used is None:
            raise await _failed(issuer, BEARER, client)
        who, scopes = used
    else:
        raise _refused()
    principal = await issuer.store.principal(who)
    if principal is None:  # disabled
        raise await _failed(issuer, who, client)
    if issuer.limiter is not None:
        await issuer.limiter.succeeded(who, client)
    request.scope[SUBJECT_KEY] = who
    hub = Management(
        issuer.store,
        principal,
        content=_content(issuer, request),
        settings=ManagementSettings(default_visibility=access.settings.default_visibility),
        passwords=issuer.passwords,
        client_address=client,
    )
    may_change = scopes is None or bool(scopes & {TokenScope.WRITE, TokenScope.DELETE})
    return Login(hub, may_change)
