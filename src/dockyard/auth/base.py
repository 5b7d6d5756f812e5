"""The ``AccessController`` seam: who may do what to which repository.

A handler names the accesses it needs; the controller answers with a grant or raises
``Unauthorized`` (carrying the ``WWW-Authenticate`` challenge) or ``Denied``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Access", "AccessController", "Grant", "RequestInfo"]


@dataclass(frozen=True, slots=True)
class Access:
    """A resource and the actions wanted on it (``pull``, ``push``, ``delete``, ``*``)."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def repository(cls, name: str, *actions: str) -> Access:
        return cls("repository", name, frozenset(actions))

    @classmethod
    def catalog(cls) -> Access:
        return cls("registry", "catalog", frozenset({"*"}))


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a controller may look at: headers and the client's address."""

    headers: Mapping[str, str]
    client: str | None


@dataclass(frozen=True, slots=True)
class Grant:
    subject: str | None
    # None grants everything (no access control configured).
    accesses: Mapping[tuple[str, str], frozenset[str]] | None = field(default=None)

    def allows(self, access: Access) -> bool:
        if self.accesses is None:
            return True
        granted = self.accesses.get((access.type, access.name), frozenset())
        return "*" in granted or access.actions <= granted


@runtime_checkable
class AccessController(Protocol):
    async def authorize(self, request: RequestInfo, wanted: Sequence[Access]) -> Grant:
        """Grant every wanted access or raise ``Unauthorized`` / ``Denied``."""
        ...
