"""``auth.builtin``: Dockyard's own accounts, with its own token server.

The registry answers a request without a good token as ``auth.token`` does, with a challenge
pointing at its own token endpoint::

    WWW-Authenticate: Bearer realm="https://registry.example.com/token",service="dockyard",scope="repository:alice/app:pull"

and verifies the tokens it issued with the public halves of its signing keys. The realm is
``auth.builtin.realm`` if set, else ``/token`` under ``http.host``, else under the scheme and
host the request came to. Parameters::

    auth:
      builtin:
        service: dockyard            # the tokens' audience (default dockyard)
        issuer: dockyard             # the tokens' issuer (default: the service)
        realm: https://...           # optional, see above
        signingkeys: [/etc/dockyard/token-key.pem]   # PEM private keys; the first signs
                                     # (default: one generated in the data directory)
        tokenexpiration: 5m          # at least 60s (default 5m)
        defaultvisibility: private   # of a repository created by a push (default private)
        maxfailuresperaccount: 10    # failed logins to one account from one address ...
        maxfailuresperaddress: 50    # ... or from one address, per window, before 429
        failurewindow: 15m           # (see dockyard.identity.limits)
        auditretention: 2160h        # purge audit events and failed-login counters older
                                     # than this (default: keep them)
        auditpurgeinterval: 1h       # how often one replica purges (default 1h)
        ldap: {...}                  # users from LDAP too (see dockyard.identity.ldap)

The token server takes a personal access token (or a robot's) in place of a password.

Without ``signingkeys``, an ES256 key is generated at the first start as
``token-signing-key.pem`` (mode 0600) in the data directory, and read at every later start by
every worker. Replicas that do not share the data directory need ``signingkeys``: each would
otherwise sign with a key of its own.

Listings that span repositories (the catalog) hold only what the caller may pull: the grant
carries a filter for them (see ``Grant.visible``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.auth.base import Access, Grant, RequestInfo
from dockyard.auth.issuer import TokenIssuer
from dockyard.auth.jwt import TokenVerifier
from dockyard.auth.keys import UntrustedKey
from dockyard.auth.options import AuthConfigError, Options
from dockyard.auth.signing import SigningKey, SigningKeys
from dockyard.auth.token import TokenAccess
from dockyard.identity.authority import Authority
from dockyard.identity.base import IdentityStore, Principal, Visibility
from dockyard.identity.external import DirectoryAccounts
from dockyard.identity.limits import LoginLimiter, LoginLimits
from dockyard.identity.passwords import Passwords

if TYPE_CHECKING:
    from dockyard.identity.ldap import LdapSettings

__all__ = ["DEFAULT_SERVICE", "TOKEN_PATH", "BuiltinAccess", "BuiltinSettings"]

DEFAULT_SERVICE = "dockyard"
DEFAULT_LIFETIME = 300.0
TOKEN_PATH = "/token"
_PARAMETERS = frozenset(
    {
        "service",
        "issuer",
        "realm",
        "signingkeys",
        "tokenexpiration",
        "defaultvisibility",
        "maxfailuresperaccount",
        "maxfailuresperaddress",
        "failurewindow",
        "auditretention",
        "auditpurgeinterval",
        "ldap",
    }
)
GENERATED_KEY = "token-signing-key.pem"

_LIMITS = LoginLimits()
DEFAULT_PURGE_INTERVAL = 3600.0


def _count(options: Options, key: str, default: int) -> int:
    value = options.params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuthConfigError(options.path(key), "must be a whole number, at least 1")
    return value


# ldap3 (some 16 MiB a process) is imported only where LDAP is configured.
def _ldap_settings(params: object) -> LdapSettings:
    from dockyard.identity.ldap import LdapSettings

    return LdapSettings.from_options(params)


def _directory(identity: IdentityStore, settings: LdapSettings) -> DirectoryAccounts:
    from dockyard.identity.ldap import LdapDirectory

    return DirectoryAccounts(identity, LdapDirectory(settings), settings.groups)


@dataclass(frozen=True)
class BuiltinSettings:
    service: str
    issuer: str
    realm: str | None
    keys: SigningKeys
    lifetime: float
    default_visibility: Visibility
    login_limits: LoginLimits = dataclasses.field(default_factory=LoginLimits)
    audit_retention: float | None = None
    audit_purge_interval: float = DEFAULT_PURGE_INTERVAL
    ldap: LdapSettings | None = None

    @classmethod
    def from_options(
        cls, params: Mapping[str, object], data_directory: str | None = None
    ) -> BuiltinSettings:
        """Read and check ``auth.builtin``; the signing keys are loaded now, so that a bad one
        stops the start-up. Without ``signingkeys``, the key is the data directory's (made
        now if there is none), or with no data directory (checking a config) a new one."""
        options = Options("builtin", params, _PARAMETERS)
        service = options.optional_text("service") or DEFAULT_SERVICE
        paths = options.paths("signingkeys")
        try:
            if paths:
                keys = SigningKeys.load([Path(p) for p in paths])
            elif data_directory is not None:
                path = Path(data_directory) / GENERATED_KEY
                keys = SigningKeys([SigningKey.load_or_create(path)])
            else:
                keys = SigningKeys([SigningKey.generate()])
        except UntrustedKey as exc:
            raise AuthConfigError(options.path("signingkeys"), str(exc)) from None
        ldap = options.params.get("ldap")
        visibility = options.choice(
            "defaultvisibility", [v.value for v in Visibility], Visibility.PRIVATE.value
        )
        return cls(
            service=service,
            issuer=options.optional_text("issuer") or service,
            realm=options.optional_text("realm"),
            keys=keys,
            lifetime=options.duration("tokenexpiration", DEFAULT_LIFETIME, minimum=60.0),
            default_visibility=Visibility(visibility),
            login_limits=LoginLimits(
                per_account=_count(options, "maxfailuresperaccount", _LIMITS.per_account),
                per_address=_count(options, "maxfailuresperaddress", _LIMITS.per_address),
                window=options.duration("failurewindow", _LIMITS.window, minimum=1.0),
            ),
            audit_retention=(
                options.duration("auditretention", 0.0, minimum=60.0)
                if options.params.get("auditretention") not in (None, "")
                else None
            ),
            audit_purge_interval=options.duration(
                "auditpurgeinterval", DEFAULT_PURGE_INTERVAL, minimum=1.0
            ),
            ldap=_ldap_settings(ldap) if ldap is not None else None,
        )


class BuiltinAccess(TokenAccess):
    """The ``AccessController`` for ``auth.builtin``, and the token server it trusts.

    ``identity`` is None only where the controller is built to check a config: tokens then
    verify, but none is issued and listings show nothing.
    """

    def __init__(
        self,
        settings: BuiltinSettings,
        identity: IdentityStore | None,
        *,
        host: str | None = None,
        passwords: Passwords | None = None,
    ) -> None:
        verifier = TokenVerifier(
            issuer=settings.issuer,
            service=settings.service,
            keys=settings.keys.trusted(),
            algorithms=settings.keys.algorithms,
        )
        super().__init__(realm=settings.realm or "", service=settings.service, verifier=verifier)
        self.settings = settings
        self.host = host
        self.authority: Authority | None = None
        self.issuer: TokenIssuer | None = None
        if identity is not None:
            self.authority = Authority(identity, settings.default_visibility)
            self.issuer = TokenIssuer(
                issuer=settings.issuer,
                service=settings.service,
                keys=settings.keys,
                lifetime=settings.lifetime,
                store=identity,
                authority=self.authority,
                passwords=passwords or Passwords(),
                limiter=LoginLimiter(identity, settings.login_limits),
                directory=(
                    _directory(identity, settings.ldap) if settings.ldap is not None else None
                ),
            )

    @classmethod
    def from_options(cls, params: Mapping[str, object]) -> BuiltinAccess:
        """A controller that verifies tokens but issues none (for checking a config); the
        factory gives a serving one the database."""
        return cls(BuiltinSettings.from_options(params), None)

    def _realm(self, request: RequestInfo) -> str:
        if self.settings.realm:
            return self.settings.realm
        if self.host:
            return self.host.rstrip("/") + TOKEN_PATH
        host = request.headers.get("host")
        if not host:
            return TOKEN_PATH
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        scheme = forwarded if forwarded in ("http", "https") else request.scheme
        return f"{scheme}://{host}{TOKEN_PATH}"

    async def authorize(self, request: RequestInfo, wanted: Sequence[Access]) -> Grant:
        grant = await super().authorize(request, wanted)
        if not any(a.type == "registry" and a.name == "catalog" for a in wanted):
            return grant
        return dataclasses.replace(grant, visible=VisibleFilter(self.authority, grant.subject))


class VisibleFilter:
    """The repositories ``subject`` may pull, of those it is shown; the subject's roles and
    grants are read once, at the first call."""

    def __init__(self, authority: Authority | None, subject: str | None) -> None:
        self.authority = authority
        self.subject = subject
        self._principal: Principal | None = None
        self._loaded = False

    async def __call__(self, repositories: Sequence[str]) -> Sequence[str]:
        if self.authority is None:
            return []
        if not self._loaded:
            self._principal = await self.authority.principal(self.subject)
            self._loaded = True
        return await self.authority.visible(self._principal, repositories)
