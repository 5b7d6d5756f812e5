"""Access token secrets: made here, shown once, and kept only as their SHA-256.

A secret is ``dyt_`` and 43 URL-safe characters (256 random bits): too much entropy to guess,
so a plain SHA-256 is enough to store it (a slow hash is for secrets people choose). The
prefix lets the token server, and secret scanners, tell a token from a password.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

__all__ = [
    "PREFIX",
    "looks_like_token",
    "new_secret",
    "parse_lifetime",
    "parse_moment",
    "secret_hash",
]

PREFIX = "dyt_"
_LIFETIME = re.compile(r"(\d+)([hdwy])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(password: str) -> bool:
    return password.startswith(PREFIX)


def parse_lifetime(text: str) -> timedelta:
    """``12h``, ``30d``, ``4w`` or ``1y`` (365 days); :class:`ValueError` otherwise."""
    found = _LIFETIME.fullmatch(text.strip().lower())
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"invalid lifetime {text!r} (expected e.g. 12h, 30d, 4w or 1y)")
    count, unit = int(found.group(1)), found.group(2)
    return count * (timedelta(days=365) if unit == "y" else _UNITS[unit])


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time (UTC unless a zone is given), or a lifetime back from now (``24h``);
    :class:`ValueError` otherwise, with a message naming neither (callers say which input)."""
    try:
        return datetime.now(UTC) - parse_lifetime(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
