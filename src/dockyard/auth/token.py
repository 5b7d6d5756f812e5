"""``auth.token``: bearer tokens from an external token server, as Distribution accepts them.

A request without a token, with a token that does not verify, or with one whose ``access``
claim does not cover everything the request needs is answered ``401 UNAUTHORIZED`` with the
challenge that tells the client where to get a better one::

    WWW-Authenticate: Bearer realm="<realm>",service="<service>",scope="repository:<name>:pull,push"

naming exactly the scopes the request needs (several separated by spaces), followed by
``error="invalid_token"`` or ``error="insufficient_scope"`` when a token was presented.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from dockyard.auth.base import Access, Grant, RequestInfo
from dockyard.auth.challenge import bearer_challenge, bearer_token
from dockyard.auth.jwt import InvalidToken, TokenVerifier
from dockyard.auth.keys import ALGORITHMS, TrustedKeys, UntrustedKey, load_certificates, load_jwks
from dockyard.auth.options import AuthConfigError, Options
from dockyard.auth.scope import access_detail, format_scope
from dockyard.errors import Unauthorized

__all__ = ["DEFAULT_AUTOREDIRECT_PATH", "TokenAccess"]

log = logging.getLogger("dockyard.auth.token")

DEFAULT_AUTOREDIRECT_PATH = "/auth/token"
_PARAMETERS = frozenset(
    {
        "realm",
        "service",
        "issuer",
        "rootcertbundle",
        "jwks",
        "autoredirect",
        "autoredirectpath",
        "signingalgorithms",
    }
)


class TokenAccess:
    """The ``AccessController`` for ``auth.token``."""

    def __init__(
        self,
        *,
        realm: str,
        service: str,
        verifier: TokenVerifier,
        autoredirect: bool = False,
        autoredirect_path: str = DEFAULT_AUTOREDIRECT_PATH,
    ) -> None:
        self.realm = realm
        self.service = service
        self.verifier = verifier
        self.autoredirect = autoredirect
        self.autoredirect_path = autoredirect_path

    @classmethod
    def from_options(cls, params: Mapping[str, object]) -> TokenAccess:
        options = Options("token", params, _PARAMETERS)
        realm = options.text("realm")
        service = options.text("service")
        issuer = options.text("issuer")
        keys = TrustedKeys()
        bundle = options.optional_text("rootcertbundle")
        jwks = options.optional_text("jwks")
        try:
            if bundle is not None:
                for certificate in load_certificates(Path(bundle)):
                    keys.add_root(certificate)
        except UntrustedKey as exc:
            raise AuthConfigError(options.path("rootcertbundle"), str(exc)) from None
        try:
            if jwks is not None:
                for kid, key in load_jwks(Path(jwks)):
                    keys.add(kid, key)
        except UntrustedKey as exc:
            raise AuthConfigError(options.path("jwks"), str(exc)) from None
        if not keys:
            raise AuthConfigError(
                options.path("rootcertbundle"),
                "token auth needs at least one signing key (rootcertbundle or jwks)",
            )
        algorithms = options.text_list("signingalgorithms") or list(ALGORITHMS)
        for algorithm in algorithms:
            if algorithm not in ALGORITHMS:
                raise AuthConfigError(
                    options.path("signingalgorithms"),
                    f"unsupported signing algorithm {algorithm!r} "
                    f"(supported: {', '.join(ALGORITHMS)})",
                )
        autoredirect = options.flag("autoredirect")
        path = options.optional_text("autoredirectpath") or DEFAULT_AUTOREDIRECT_PATH
        verifier = TokenVerifier(
            issuer=issuer, service=service, keys=keys, algorithms=frozenset(algorithms)
        )
        return cls(
            realm=realm,
            service=service,
            verifier=verifier,
            autoredirect=autoredirect,
            autoredirect_path=path,
        )

    async def authorize(self, request: RequestInfo, wanted: Sequence[Access]) -> Grant:
        raw = bearer_token(request.headers)
        if raw is None:
            raise self._challenge(request, wanted, None)
        try:
            token = self.verifier.verify(raw)
        except InvalidToken as exc:
            log.info("token refused from %s: %s", request.client, exc)
            raise self._challenge(request, wanted, "invalid_token") from None
        grant = Grant(subject=token.subject, accesses=token.access)
        if not all(grant.allows(access) for access in wanted):
            raise self._challenge(request, wanted, "insufficient_scope")
        return grant

    def _realm(self, request: RequestInfo) -> str:
        if not self.autoredirect:
            return self.realm
        host = request.headers.get("host")
        if not host:
            return self.realm
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        scheme = forwarded if forwarded in ("http", "https") else "https"
        return f"{scheme}://{host}{self.autoredirect_path}"

    def _challenge(
        self, request: RequestInfo, wanted: Sequence[Access], error: str | None
    ) -> Unauthorized:
        challenge = bearer_challenge(
            self._realm(request), self.service, format_scope(wanted), error
        )
        return Unauthorized(access_detail(wanted) or None, headers={"WWW-Authenticate": challenge})
