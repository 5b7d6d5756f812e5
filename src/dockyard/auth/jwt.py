"""Verifying the JSON Web Tokens of an external token server (Docker token specification).

A token is accepted when all of these hold:

- it is a compact JWS whose ``alg`` is one of the allowed algorithms (never ``none``) and
  suits the key: HMAC only with a JWKS secret, each curve only with its own ``ES`` algorithm;
- its key is trusted (see :mod:`dockyard.auth.keys`) and its signature verifies;
- ``iss`` is the configured issuer and ``aud`` is (or lists) the service;
- ``exp`` is present and not past, ``nbf`` (if present) is not ahead, both within a leeway of
  60 seconds for clock skew, as Distribution allows;
- ``access`` is a list of ``{"type", "name", "actions"}``.

Verified tokens are remembered (by their exact text) until they expire, since a client sends
the same token with every request of a pull or push.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from dockyard.auth.keys import (
    TrustedKeys,
    UntrustedKey,
    VerificationKey,
    suits,
    verify_chain,
)
from dockyard.auth.scope import parse_access_claim

__all__ = ["LEEWAY", "InvalidToken", "TokenVerifier", "VerifiedToken"]

log = logging.getLogger("dockyard.auth.token")

LEEWAY = 60.0
CACHE_SIZE = 4096
# A longer token is refused unparsed.
MAX_TOKEN = 64 * 1024


class InvalidToken(Exception):
    """A token that is malformed, untrusted, expired or meant for someone else."""


@dataclass(frozen=True)
class VerifiedToken:
    subject: str | None
    access: dict[tuple[str, str], frozenset[str]]
    valid_until: float
    """Seconds since the epoch after which the token is refused (leeway included)."""


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} claim is not a number")
    return float(value)


class TokenVerifier:
    """Checks tokens against one issuer, one service and a set of trusted keys."""

    def __init__(
        self,
        *,
        issuer: str,
        service: str,
        keys: TrustedKeys,
        algorithms: frozenset[str],
        leeway: float = LEEWAY,
        clock: Callable[[], float] = time.time,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.issuer = issuer
        self.service = service
        self.keys = keys
        self.algorithms = algorithms - {"none"}
        self.leeway = leeway
        self.clock = clock
        self._cache: collections.OrderedDict[str, VerifiedToken] = collections.OrderedDict()
        self._cache_size = cache_size

    def verify(self, raw: str) -> VerifiedToken:
        """The token's subject and access; :class:`InvalidToken` if it must be refused."""
        now = self.clock()
        cached = self._cache.get(raw)
        if cached is not None:
            if now <= cached.valid_until:
                self._cache.move_to_end(raw)
                return cached
            del self._cache[raw]
            raise InvalidToken("token expired")
        token = self._verify(raw, now)
        self._cache[raw] = token
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return token

    def _verify(self, raw: str, now: float) -> VerifiedToken:
        if len(raw) > MAX_TOKEN or raw.count(".") != 2:
            raise InvalidToken("not a compact JWS")
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if "crit" in header:
            raise InvalidToken("token names critical extensions; none is understood")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidToken(f"signing algorithm {algorithm!r} not allowed")
        keys, key_expiry = self._signing_keys(header, now)
        usable = [key for key in keys if suits(algorithm, key)]
        if not usable:
            raise InvalidToken(f"no trusted key for {algorithm} matches the token")
        claims = self._decode(raw, algorithm, usable)
        exp = _number(claims, "exp")
        nbf = _number(claims, "nbf")
        if exp is None:
            raise InvalidToken("token has no exp claim")
        if now > exp + self.leeway:
            raise InvalidToken("token expired")
        if nbf is not None and now < nbf - self.leeway:
            raise InvalidToken("token not valid yet")
        try:
            access = parse_access_claim(claims.get("access"))
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None
        subject = claims.get("sub")
        return VerifiedToken(
            subject=subject if isinstance(subject, str) and subject else None,
            access=access,
            valid_until=min(exp + self.leeway, key_expiry),
        )

    def _signing_keys(
        self, header: dict[str, Any], now: float
    ) -> tuple[list[VerificationKey], float]:
        """The trusted keys the header names, and when trusting them ends."""
        x5c, jwk, kid = header.get("x5c"), header.get("jwk"), header.get("kid")
        try:
            if x5c is not None:
                if not isinstance(x5c, list):
                    raise UntrustedKey("x5c is not a list")
                moment = datetime.fromtimestamp(now, UTC)
                key, until = verify_chain(x5c, self.keys.roots, moment)
                return [key], until.timestamp()
            if jwk is not None:
                if not isinstance(jwk, dict):
                    raise UntrustedKey("jwk is not an object")
                return self.keys.for_jwk(jwk), float("inf")
        except UntrustedKey as exc:
            raise InvalidToken(str(exc)) from None
        if isinstance(kid, str) and kid:
            return list(self.keys.by_id.get(kid, [])), float("inf")
        raise InvalidToken("token names no key (x5c, jwk or kid)")

    def _decode(self, raw: str, algorithm: str, keys: list[VerificationKey]) -> dict[str, Any]:
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    raw,
                    key,
                    algorithms=[algorithm],
                    audience=self.service,
                    issuer=self.issuer,
                    options={
                        # Times are checked above, against our clock and leeway.
                        "require": ["iss", "aud"],
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_jti": False,
                        "verify_sub": False,
                    },
                )
            except jwt.InvalidSignatureError:
                continue  # another trusted key may share the ID
            except jwt.PyJWTError as exc:
                raise InvalidToken(str(exc)) from None
            return claims
        raise InvalidToken("signature does not verify")
