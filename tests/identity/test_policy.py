"""The access policy as a table: who gets which actions on which repository."""

from __future__ import annotations

import pytest

from dockyard.identity.base import (
    Namespace,
    NamespaceKind,
    Permission,
    Principal,
    Role,
    Visibility,
)
from dockyard.identity.policy import actions, matches, namespace_of, permission

ALICE_NS = Namespace("alice", NamespaceKind.USER)
BOB_NS = Namespace("bob", NamespaceKind.USER)
ACME = Namespace("acme", NamespaceKind.ORGANIZATION, Permission.READ)
ACME_WRITERS = Namespace("acme", NamespaceKind.ORGANIZATION, Permission.WRITE)
ACME_CLOSED = Namespace("acme", NamespaceKind.ORGANIZATION, Permission.NONE)


def user(
    name: str,
    *,
    admin: bool = False,
    orgs: dict[str, Role] | None = None,
    grants: tuple[tuple[str, Permission], ...] = (),
) -> Principal:
    return Principal(name=name, is_admin=admin, organizations=orgs or {}, grants=grants)


ALICE = user("alice")
BOB = user("bob")
ADMIN = user("root", admin=True)
OWNER = user("olive", orgs={"acme": Role.OWNER})
MEMBER = user("mike", orgs={"acme": Role.MEMBER})
GRANTED = user("gina", grants=(("alice/app", Permission.WRITE),))
PATTERNED = user("pat", grants=(("acme/*", Permission.ADMIN), ("nginx", Permission.READ)))

NONE: frozenset[str] = frozenset()
PULL = frozenset({"pull"})
WRITE = frozenset({"pull", "push"})
ALL = frozenset({"pull", "push", "delete", "*"})

PRIVATE, PUBLIC = Visibility.PRIVATE, Visibility.PUBLIC

TABLE = [
    # (who, repository, namespace owner, visibility, actions)
    # A user's own namespace.
    (ALICE, "alice/app", ALICE_NS, PRIVATE, ALL),
    (ALICE, "alice/new", ALICE_NS, None, ALL),
    (ALICE, "alice/deep/er", ALICE_NS, PUBLIC, ALL),
    (BOB, "alice/app", ALICE_NS, PRIVATE, NONE),
    (BOB, "alice/app", ALICE_NS, None, NONE),
    (BOB, "alice/app", ALICE_NS, PUBLIC, PULL),
    (None, "alice/app", ALICE_NS, PRIVATE, NONE),
    (None, "alice/app", ALICE_NS, PUBLIC, PULL),
    (None, "alice/new", ALICE_NS, None, NONE),
    # A user whose name is a prefix of another's namespace owns nothing there.
    (user("ali"), "alice/app", ALICE_NS, PRIVATE, NONE),
    # Site admins: everything, everywhere.
    (ADMIN, "alice/app", ALICE_NS, PRIVATE, ALL),
    (ADMIN, "nginx", None, None, ALL),
    (ADMIN, "acme/backend/api", ACME, PRIVATE, ALL),
    # The official namespace, and namespaces nobody owns: admins only.
    (ALICE, "nginx", None, PRIVATE, NONE),
    (ALICE, "nginx", None, PUBLIC, PULL),
    (None, "nginx", None, PUBLIC, PULL),
    (ALICE, "nobody/app", None, None, NONE),
    # Organizations: owners everything, members the default permission.
    (OWNER, "acme/backend/api", ACME, PRIVATE, ALL),
    (MEMBER, "acme/backend/api", ACME, PRIVATE, PULL),
    (MEMBER, "acme/backend/api", ACME_WRITERS, PRIVATE, WRITE),
    (MEMBER, "acme/backend/api", ACME_CLOSED, PRIVATE, NONE),
    (MEMBER, "acme/backend/api", ACME_CLOSED, PUBLIC, PULL),
    (ALICE, "acme/backend/api", ACME_WRITERS, PRIVATE, NONE),
    (OWNER, "alice/app", ALICE_NS, PRIVATE, NONE),
    # Explicit grants, exact or by pattern; the highest permission wins.
    (GRANTED, "alice/app", ALICE_NS, PRIVATE, WRITE),
    (GRANTED, "alice/app2", ALICE_NS, PRIVATE, NONE),
    (PATTERNED, "acme/api", ACME_CLOSED, PRIVATE, ALL),
    (PATTERNED, "acme/backend/api", ACME_CLOSED, PRIVATE, NONE),
    (PATTERNED, "nginx", None, PRIVATE, PULL),
    (
        user("mia", orgs={"acme": Role.MEMBER}, grants=(("acme/api", Permission.ADMIN),)),
        "acme/api",
        ACME,
        PRIVATE,
        ALL,
    ),
    (
        user("mo", orgs={"acme": Role.MEMBER}, grants=(("acme/api", Permission.READ),)),
        "acme/api",
        ACME_WRITERS,
        PRIVATE,
        WRITE,
    ),
]


@pytest.mark.parametrize(
    ("who", "repository", "namespace", "visibility", "expected"),
    TABLE,
    ids=[
        f"{who.name if who else 'anonymous'}-{repo}-{vis.value if vis else 'new'}-{i}"
        for i, (who, repo, _, vis, _) in enumerate(TABLE)
    ],
)
def test_policy_table(
    who: Principal | None,
    repository: str,
    namespace: Namespace | None,
    visibility: Visibility | None,
    expected: frozenset[str],
) -> None:
    assert actions(who, repository, namespace, visibility) == expected


def test_permission_levels() -> None:
    assert permission(None, "alice/app", ALICE_NS) is Permission.NONE
    assert permission(MEMBER, "acme/x", ACME) is Permission.READ
    assert permission(OWNER, "acme/x", ACME) is Permission.ADMIN


@pytest.mark.parametrize(
    ("pattern", "repository", "expected"),
    [
        ("alice/app", "alice/app", True),
        ("alice/app", "alice/app2", False),
        ("alice/app", "alice/ap", False),
        ("acme/*", "acme/api", True),
        ("acme/*", "acme/backend/api", False),
        ("acme/*", "acme", False),
        ("acme/**", "acme/backend/api", True),
        ("acme/**", "acmex/api", False),
        ("acme/*/api", "acme/backend/api", True),
        ("acme/*/api", "acme/backend/web", False),
        ("*", "nginx", True),
        ("*", "acme/api", False),
        ("**", "acme/backend/api", True),
        ("acme/back*", "acme/backend", True),
        ("a.b/*", "aXb/c", False),  # the rest of a pattern is literal
        ("acme/[ab]", "acme/a", False),
    ],
)
def test_patterns(pattern: str, repository: str, expected: bool) -> None:
    assert matches(pattern, repository) is expected


@pytest.mark.parametrize(
    ("repository", "namespace"),
    [("nginx", None), ("alice/app", "alice"), ("acme/backend/api", "acme")],
)
def test_namespace_of(repository: str, namespace: str | None) -> None:
    assert namespace_of(repository) == namespace


def test_permission_parse() -> None:
    assert Permission.parse("Write") is Permission.WRITE
    assert Permission.WRITE.label == "write"
    with pytest.raises(ValueError, match="owner"):
        Permission.parse("owner")
