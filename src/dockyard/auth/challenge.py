"""The HTTP side of authentication: reading ``Authorization`` and writing ``WWW-Authenticate``.

Pure functions on strings; a malformed header is reported as ``None``, never raised, so that
whatever a client sends ends in a challenge and not in a server error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

__all__ = ["basic_challenge", "basic_credentials", "bearer_challenge", "bearer_token", "quote"]

# Longer credentials are refused unread (a bearer token with a certificate chain stays well below).
MAX_CREDENTIALS = 64 * 1024


def quote(value: str) -> str:
    """An RFC 9110 quoted-string: ``"`` and ``\\`` escaped, control characters dropped."""
    cleaned = "".join(c for c in value if c >= " " and c != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _credentials(headers: Mapping[str, str], scheme: str) -> str | None:
    value = headers.get("authorization")
    if value is None or len(value) > MAX_CREDENTIALS:
        return None
    given, _, rest = value.strip().partition(" ")
    if given.lower() != scheme:
        return None
    rest = rest.strip()
    return rest or None


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(user, password)`` from ``Authorization: Basic``, or ``None`` if absent or malformed."""
    encoded = _credentials(headers, "basic")
    if encoded is None:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        return None
    return user, password


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer``, or ``None``."""
    return _credentials(headers, "bearer")


def basic_challenge(realm: str) -> str:
    return f"Basic realm={quote(realm)}"


def bearer_challenge(realm: str, service: str, scope: str, error: str | None = None) -> str:
    """``Bearer realm=...,service=...[,scope=...][,error=...]``, in Distribution's order."""
    parts = [f"Bearer realm={quote(realm)}", f"service={quote(service)}"]
    if scope:
        parts.append(f"scope={quote(scope)}")
    if error:
        parts.append(f"error={quote(error)}")
    return ",".join(parts)
