"""Reading one provider's parameters from the config's ``auth`` section.

Every refusal is an :class:`AuthConfigError` naming the key path (``auth.token.issuer``), so
that a bad config fails at start-up with a message the operator can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.config.durations import duration_seconds

__all__ = ["AuthConfigError", "Options"]


class AuthConfigError(ValueError):
    """An ``auth`` section that cannot be used; ``path`` is the offending key."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}")


class Options:
    """The parameters of ``auth.<provider>``, read one key at a time."""

    def __init__(self, provider: str, params: Mapping[str, Any], known: frozenset[str]) -> None:
        self.provider = provider
        self.params = params
        unknown = sorted(set(params) - known)
        if unknown:
            raise AuthConfigError(
                self.path(unknown[0]),
                f"unknown parameter (expected one of {', '.join(sorted(known))})",
            )

    def path(self, key: str) -> str:
        return f"auth.{self.provider}.{key}"

    def text(self, key: str) -> str:
        value = self.optional_text(key)
        if value is None:
            raise AuthConfigError(self.path(key), "required")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.params.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise AuthConfigError(self.path(key), "must be a string")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.params.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise AuthConfigError(self.path(key), "must be true or false")
        return value

    def text_list(self, key: str) -> list[str]:
        value = self.params.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AuthConfigError(self.path(key), "must be a list of strings")
        return list(value)

    def paths(self, key: str) -> list[str]:
        """A list of file paths; one path alone (as an environment override gives it) is a
        list of one."""
        value = self.params.get(key)
        if isinstance(value, str):
            return [value] if value else []
        return self.text_list(key)

    def duration(self, key: str, default: float, minimum: float = 0.0) -> float:
        """Seconds, written as a Go duration (``5m``, ``1h30m``) or a number of seconds."""
        value = self.params.get(key)
        if value is None or value == "":
            return default
        try:
            seconds = duration_seconds(value)
        except ValueError as exc:
            raise AuthConfigError(self.path(key), str(exc)) from None
        if seconds < minimum:
            raise AuthConfigError(self.path(key), f"must be at least {minimum:g} seconds")
        return seconds

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.optional_text(key)
        if value is None:
            return default
        if value.lower() not in choices:
            raise AuthConfigError(self.path(key), f"must be one of {', '.join(choices)}")
        return value.lower()
