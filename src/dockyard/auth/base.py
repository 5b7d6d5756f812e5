"""The ``AccessController`` seam: who may do what to which repository.

A handler names the accesses it needs; the controller answers with a grant or raises
``Unauthorized`` (carrying the ``WWW-Authenticate`` challenge) or ``Denied``.

A grant may narrow a listing that spans repositories (the catalog) with ``visible``: the
controller knows who may see what, the handler knows which names it is about to list, so
the grant carries a filter the handler applies to each batch of names. Controllers that
grant the catalog whole (Distribution's modes) leave it unset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Access", "AccessController", "Grant", "RepositoryFilter", "RequestInfo"]

RepositoryFilter = Callable[[Sequence[str]], Awaitable[Sequence[str]]]
"""Those of the given repository names the caller may see, in the order given."""


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
    """What a controller may look at: headers, the client's address and the scheme the
    request came in with (``http`` or ``https``)."""

    headers: Mapping[str, str]
    client: str | None
    scheme: str = "http"


@dataclass(frozen=True, slots=True)
class Grant:
    subject: str | None
    # None grants everything (no access control configured).
    accesses: Mapping[tuple[str, str], frozenset[str]] | None = field(default=None)
    # None: every repository a granted listing covers may be shown.
    visible: RepositoryFilter | None = field(default=None)

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
