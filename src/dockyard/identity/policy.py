"""Who may do what to a repository: a pure function of the facts the identity store keeps.

A repository's namespace is the first component of its name (``alice`` of ``alice/app``,
``acme`` of ``acme/backend/api``); a name without ``/`` (``nginx``) is in the site's
official namespace, as is any name whose first component is nobody's. The permission of a
user on a repository is the highest of:

==============================================  =========================================
site admin                                      admin, on every repository
the user whose namespace it is                  admin
an owner of the organization whose namespace    admin
a member of that organization                   the organization's default permission
a grant to the user, or to one of its teams     the granted permission, where the grant's
                                                pattern matches the repository's name
==============================================  =========================================

and permissions give actions: read ``pull``; write ``pull, push``; admin ``pull, push,
delete, *``. Anyone, anonymous included, may ``pull`` a public repository. Nothing else is
granted: a private repository is invisible to whoever has no permission on it, exactly as
a repository that does not exist.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from dockyard.identity.base import (
    Namespace,
    NamespaceKind,
    Permission,
    Principal,
    Role,
    Visibility,
)

__all__ = ["ACTIONS", "actions", "matches", "namespace_of", "permission"]

ACTIONS: Mapping[Permission, frozenset[str]] = {
    Permission.NONE: frozenset(),
    Permission.READ: frozenset({"pull"}),
    Permission.WRITE: frozenset({"pull", "push"}),
    Permission.ADMIN: frozenset({"pull", "push", "delete", "*"}),
}
_PUBLIC = frozenset({"pull"})


def namespace_of(repository: str) -> str | None:
    """The first component of a name with several, else None (the official namespace)."""
    head, sep, _ = repository.partition("/")
    return head if sep else None


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(
        "[^/]*" if part == "*" else ".*" if part == "**" else re.escape(part) for part in parts
    )
    return re.compile(regex)


def matches(pattern: str, repository: str) -> bool:
    """Whether a grant's pattern covers ``repository``: an exact name, or a glob where ``*``
    stands for any characters within one path component and ``**`` for any characters at
    all (``acme/*`` covers ``acme/api``, ``acme/**`` also ``acme/backend/api``)."""
    if "*" not in pattern:
        return pattern == repository
    return _compile(pattern).fullmatch(repository) is not None


def permission(
    principal: Principal | None, repository: str, namespace: Namespace | None
) -> Permission:
    """The user's permission on ``repository``, whose namespace's owner is ``namespace``
    (None: the official namespace, or one that nobody owns)."""
    if principal is None:
        return Permission.NONE
    if principal.is_admin:
        return Permission.ADMIN
    level = Permission.NONE
    if namespace is not None:
        if namespace.kind is NamespaceKind.USER and namespace.name == principal.name:
            return Permission.ADMIN
        if namespace.kind is NamespaceKind.ORGANIZATION:
            role = principal.organizations.get(namespace.name)
            if role is Role.OWNER:
                return Permission.ADMIN
            if role is Role.MEMBER:
                level = namespace.default_permission
    for pattern, granted in principal.grants:
        if granted > level and matches(pattern, repository):
            level = granted
    return level


def actions(
    principal: Principal | None,
    repository: str,
    namespace: Namespace | None,
    visibility: Visibility | None,
) -> frozenset[str]:
    """The actions the user (None: anonymous) may take on ``repository``; ``visibility`` is
    None for a repository that has none yet, which counts as private."""
    granted = ACTIONS[permission(principal, repository, namespace)]
    if visibility is Visibility.PUBLIC:
        return granted | _PUBLIC
    return granted
