"""Glob patterns for repositories and tags: ``*`` matches any run of characters (``/``
included, so ``library/*`` is a namespace), ``?`` one character, anything else itself.

The same pattern is matched here, by SQLite's ``GLOB`` and by a PostgreSQL regex (see
:func:`to_regex`), so the syntax is kept to what all three read alike: no ``[...]`` classes.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["PatternError", "matches", "namespace_of", "to_regex", "validate"]

# Characters of repository names and tags (the spec's grammars), plus the two wildcards.
_ALLOWED = re.compile(r"[A-Za-z0-9._/:@+\-*?]+")
_MAX_LENGTH = 256


class PatternError(ValueError):
    """A pattern this registry cannot match the same way everywhere."""


def validate(pattern: str, what: str = "pattern") -> str:
    if not pattern or len(pattern) > _MAX_LENGTH or not _ALLOWED.fullmatch(pattern):
        raise PatternError(
            f"invalid {what} {pattern!r}: use letters, digits, . _ - / : and the wildcards * ?"
        )
    return pattern


def to_regex(pattern: str) -> str:
    """An anchored regular expression, read alike by Python and PostgreSQL."""
    parts = []
    for char in validate(pattern):
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char.isalnum() or char in "_/:@-":
            parts.append(char)
        else:
            parts.append("\\" + char)
    return "^" + "".join(parts) + "$"


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(to_regex(pattern), re.DOTALL)


def matches(pattern: str, name: str) -> bool:
    return _compiled(pattern).match(name) is not None


def namespace_of(repository: str) -> str:
    """The first component of a repository name (the whole name when it has one)."""
    return repository.split("/", 1)[0]
