"""The contract every ``IdentityStore`` keeps.

A store's test module plugs it in with a subclass that provides a ``store`` fixture giving a
fresh, empty store for each test::

    class TestMyIdentityStore(IdentityStoreContract):
        @pytest.fixture
        async def store(self) -> AsyncIterator[IdentityStore]:
            ...
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.identity.base import (
    AlreadyExists,
    AuditEvent,
    IdentityStore,
    InvalidName,
    Namespace,
    NamespaceKind,
    NotFound,
    OrganizationMember,
    Permission,
    PermissionGrant,
    Role,
    TeamSubject,
    TokenScope,
    UserSubject,
    Visibility,
)

CONCURRENCY = 8


class IdentityStoreContract:
    # -- users ---------------------------------------------------------------------------------
    async def test_created_user_is_found(self, store: IdentityStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        created = await store.create_user("alice", "hash-a")
        assert created.name == "alice"
        assert not created.is_admin
        assert not created.disabled
        found = await store.get_user("alice")
        assert found is not None
        assert found.name == "alice"
        assert before <= found.created_at <= datetime.now(UTC) + timedelta(seconds=1)
        assert found.created_at.tzinfo is not None
        assert await store.get_user("bob") is None

    async def test_credentials_carry_the_hash(self, store: IdentityStore) -> None:
        await store.create_user("alice", "hash-a", is_admin=True)
        await store.create_user("robot", None)
        credentials = await store.credentials("alice")
        assert credentials is not None
        assert credentials.password_hash == "hash-a"
        assert credentials.user.is_admin
        robot = await store.credentials("robot")
        assert robot is not None
        assert robot.password_hash is None
        assert await store.credentials("nobody") is None

    async def test_users_are_listed_by_name(self, store: IdentityStore) -> None:
        for name in ("carol", "alice", "bob"):
            await store.create_user(name, "h")
        assert [u.name for u in await store.list_users()] == ["alice", "bob", "carol"]

    async def test_a_name_is_taken_once(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        with pytest.raises(AlreadyExists):
            await store.create_user("alice", "other")
        with pytest.raises(AlreadyExists):
            await store.create_organization("alice", owner="alice")
        await store.create_organization("acme", owner="alice")
        with pytest.raises(AlreadyExists):
            await store.create_user("acme", "h")
        with pytest.raises(AlreadyExists):
            await store.create_organization("acme", owner="alice")
        assert [u.name for u in await store.list_users()] == ["alice"]

    @pytest.mark.parametrize("name", ["", "Alice", "a/b", "-a", "a-", "a..b", "a" * 65, "é"])
    async def test_invalid_names_are_refused(self, store: IdentityStore, name: str) -> None:
        with pytest.raises(InvalidName):
            await store.create_user(name, "h")
        await store.create_user("owner", "h")
        with pytest.raises(InvalidName):
            await store.create_organization(name, owner="owner")
        assert [u.name for u in await store.list_users()] == ["owner"]

    async def test_concurrent_creations_of_one_name_admit_one(self, store: IdentityStore) -> None:
        results = await asyncio.gather(
            *(store.create_user("racer", f"h{i}") for i in range(CONCURRENCY)),
            return_exceptions=True,
        )
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
        assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, BaseException))

    async def test_user_updates(self, store: IdentityStore) -> None:
        await store.create_user("alice", "old")
        await store.set_password("alice", "new")
        await store.set_admin("alice", True)
        credentials = await store.credentials("alice")
        assert credentials is not None
        assert credentials.password_hash == "new"
        assert credentials.user.is_admin
        await store.set_disabled("alice", True)
        user = await store.get_user("alice")
        assert user is not None
        assert user.disabled
        for update in (
            store.set_password("nobody", "h"),
            store.set_admin("nobody", True),
            store.set_disabled("nobody", True),
        ):
            with pytest.raises(NotFound):
                await update

    # -- principals ----------------------------------------------------------------------------
    async def test_principal_of_a_plain_user(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        principal = await store.principal("alice")
        assert principal is not None
        assert principal.name == "alice"
        assert not principal.is_admin
        assert principal.organizations == {}
        assert principal.grants == ()
        assert await store.principal("nobody") is None

    async def test_disabled_user_has_no_principal(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h", is_admin=True)
        await store.set_disabled("alice", True)
        assert await store.principal("alice") is None
        await store.set_disabled("alice", False)
        principal = await store.principal("alice")
        assert principal is not None
        assert principal.is_admin

    async def test_principal_gathers_roles_and_grants(self, store: IdentityStore) -> None:
        for name in ("alice", "bob"):
            await store.create_user(name, "h")
        await store.create_organization("acme", owner="alice")
        await store.create_organization("globex", owner="alice")
        await store.set_member("acme", "bob", Role.MEMBER)
        await store.set_member("globex", "bob", Role.OWNER)
        await store.create_team("acme", "devs")
        await store.add_team_member("acme", "devs", "bob")
        await store.grant("acme/api", UserSubject("bob"), Permission.READ)
        await store.grant("acme/*", TeamSubject("acme", "devs"), Permission.WRITE)
        await store.grant("other/x", UserSubject("alice"), Permission.ADMIN)
        bob = await store.principal("bob")
        assert bob is not None
        assert bob.organizations == {"acme": Role.MEMBER, "globex": Role.OWNER}
        assert bob.grants == (("acme/*", Permission.WRITE), ("acme/api", Permission.READ))
        alice = await store.principal("alice")
        assert alice is not None
        assert alice.organizations == {"acme": Role.OWNER, "globex": Role.OWNER}
        assert alice.grants == (("other/x", Permission.ADMIN),)

    # -- organizations and teams ---------------------------------------------------------------
    async def test_organization_starts_with_its_owner(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        created = await store.create_organization(
            "acme", owner="alice", default_permission=Permission.READ
        )
        assert created.default_permission is Permission.READ
        found = await store.get_organization("acme")
        assert found is not None
        assert found.default_permission is Permission.READ
        assert await store.members("acme") == [OrganizationMember("alice", Role.OWNER)]
        assert await store.get_organization("nothing") is None
        await store.set_default_permission("acme", Permission.WRITE)
        found = await store.get_organization("acme")
        assert found is not None
        assert found.default_permission is Permission.WRITE

    async def test_organization_needs_an_existing_owner(self, store: IdentityStore) -> None:
        with pytest.raises(NotFound):
            await store.create_organization("acme", owner="ghost")
        assert await store.get_organization("acme") is None
        # The failed attempt did not keep the name.
        await store.create_user("acme", "h")

    async def test_members_join_change_role_and_leave(self, store: IdentityStore) -> None:
        for name in ("alice", "bob", "carol"):
            await store.create_user(name, "h")
        await store.create_organization("acme", owner="alice")
        await store.set_member("acme", "bob", Role.MEMBER)
        await store.set_member("acme", "carol", Role.MEMBER)
        await store.set_member("acme", "carol", Role.OWNER)
        assert await store.members("acme") == [
            OrganizationMember("alice", Role.OWNER),
            OrganizationMember("bob", Role.MEMBER),
            OrganizationMember("carol", Role.OWNER),
        ]
        await store.create_team("acme", "devs")
        await store.add_team_member("acme", "devs", "bob")
        await store.remove_member("acme", "bob")
        assert [m.user for m in await store.members("acme")] == ["alice", "carol"]
        assert await store.team_members("acme", "devs") == []
        with pytest.raises(NotFound):
            await store.set_member("nothing", "bob", Role.MEMBER)
        with pytest.raises(NotFound):
            await store.set_member("acme", "ghost", Role.MEMBER)

    async def test_teams(self, store: IdentityStore) -> None:
        for name in ("alice", "bob", "carol"):
            await store.create_user(name, "h")
        await store.create_organization("acme", owner="alice")
        await store.create_organization("globex", owner="carol")
        await store.set_member("acme", "bob", Role.MEMBER)
        await store.create_team("acme", "devs")
        await store.create_team("globex", "devs")  # team names are per organization
        with pytest.raises(AlreadyExists):
            await store.create_team("acme", "devs")
        with pytest.raises(InvalidName):
            await store.create_team("acme", "Dev Team")
        with pytest.raises(NotFound):
            await store.create_team("nothing", "devs")
        await store.add_team_member("acme", "devs", "bob")
        await store.add_team_member("acme", "devs", "alice")
        await store.add_team_member("acme", "devs", "bob")  # again: no change
        assert await store.team_members("acme", "devs") == ["alice", "bob"]
        assert await store.team_members("globex", "devs") == []
        with pytest.raises(NotFound):  # carol is not a member of acme
            await store.add_team_member("acme", "devs", "carol")
        with pytest.raises(NotFound):
            await store.add_team_member("acme", "ops", "bob")
        await store.remove_team_member("acme", "devs", "alice")
        assert await store.team_members("acme", "devs") == ["bob"]

    # -- grants --------------------------------------------------------------------------------
    async def test_grants_are_set_changed_and_removed(self, store: IdentityStore) -> None:
        for name in ("alice", "bob"):
            await store.create_user(name, "h")
        await store.create_organization("acme", owner="alice")
        await store.create_team("acme", "devs")
        await store.grant("acme/api", UserSubject("bob"), Permission.READ)
        await store.grant("acme/api", UserSubject("bob"), Permission.WRITE)
        await store.grant("acme/**", TeamSubject("acme", "devs"), Permission.ADMIN)
        await store.grant("acme/api", UserSubject("alice"), Permission.READ)
        assert await store.grants() == [
            PermissionGrant("acme/**", TeamSubject("acme", "devs"), Permission.ADMIN),
            PermissionGrant("acme/api", UserSubject("alice"), Permission.READ),
            PermissionGrant("acme/api", UserSubject("bob"), Permission.WRITE),
        ]
        await store.grant("acme/api", UserSubject("bob"), Permission.NONE)
        await store.grant("acme/**", TeamSubject("acme", "devs"), Permission.NONE)
        assert await store.grants() == [
            PermissionGrant("acme/api", UserSubject("alice"), Permission.READ)
        ]
        with pytest.raises(NotFound):
            await store.grant("x", UserSubject("ghost"), Permission.READ)
        with pytest.raises(NotFound):
            await store.grant("x", TeamSubject("acme", "ghosts"), Permission.READ)

    # -- repositories and namespaces -----------------------------------------------------------
    async def test_visibility(self, store: IdentityStore) -> None:
        assert await store.visibilities(["a/x", "b"]) == {}
        await store.set_visibility("a/x", Visibility.PUBLIC)
        await store.set_visibility("b", Visibility.PRIVATE)
        await store.set_visibility("b", Visibility.PUBLIC)
        assert await store.visibilities(["a/x", "b", "c", "a/x"]) == {
            "a/x": Visibility.PUBLIC,
            "b": Visibility.PUBLIC,
        }
        assert await store.visibilities([]) == {}

    async def test_claim_keeps_an_existing_visibility(self, store: IdentityStore) -> None:
        assert await store.claim_repository("a/new", Visibility.PRIVATE) is Visibility.PRIVATE
        assert await store.claim_repository("a/new", Visibility.PUBLIC) is Visibility.PRIVATE
        await store.set_visibility("a/new", Visibility.PUBLIC)
        assert await store.claim_repository("a/new", Visibility.PRIVATE) is Visibility.PUBLIC

    async def test_concurrent_claims_agree(self, store: IdentityStore) -> None:
        results = await asyncio.gather(
            *(
                store.claim_repository("race/repo", list(Visibility)[i % 2])
                for i in range(CONCURRENCY)
            )
        )
        assert len(set(results)) == 1

    async def test_namespaces(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_organization("acme", owner="alice", default_permission=Permission.WRITE)
        assert await store.namespaces(["alice", "acme", "nobody", "alice"]) == {
            "alice": Namespace("alice", NamespaceKind.USER),
            "acme": Namespace("acme", NamespaceKind.ORGANIZATION, Permission.WRITE),
        }
        assert await store.namespaces([]) == {}

    # -- refresh tokens ------------------------------------------------------------------------
    async def test_refresh_tokens(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_user("bob", "h")
        await store.add_refresh_token("t1", "alice", "registry", "cli")
        await store.add_refresh_token("t2", "alice", "registry", "cli")
        await store.add_refresh_token("t3", "bob", "registry", "cli")
        assert await store.refresh_token_user("t1", "registry") == "alice"
        assert await store.refresh_token_user("t1", "another") is None
        assert await store.refresh_token_user("nothing", "registry") is None
        assert await store.revoke_refresh_tokens("alice") == 2
        assert await store.refresh_token_user("t2", "registry") is None
        assert await store.refresh_token_user("t3", "registry") == "bob"
        with pytest.raises(NotFound):
            await store.add_refresh_token("t4", "ghost", "registry", "cli")

    async def test_disabling_revokes_refresh_tokens(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.add_refresh_token("t1", "alice", "registry", "cli")
        await store.set_disabled("alice", True)
        await store.set_disabled("alice", False)
        assert await store.refresh_token_user("t1", "registry") is None

    # -- access tokens -------------------------------------------------------------------------
    async def test_access_tokens_are_created_listed_and_revoked(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        created = await store.create_access_token(
            "alice", "laptop", "hash-1", frozenset({TokenScope.READ}), expires
        )
        assert created.scopes == {TokenScope.READ}
        await store.create_access_token(
            "alice", "ci", "hash-2", frozenset({TokenScope.WRITE, TokenScope.DELETE}), None
        )
        with pytest.raises(AlreadyExists):
            await store.create_access_token(
                "alice", "ci", "hash-3", frozenset({TokenScope.READ}), None
            )
        with pytest.raises(NotFound):
            await store.create_access_token(
                "ghost", "ci", "hash-4", frozenset({TokenScope.READ}), None
            )
        listed = await store.access_tokens("alice")
        assert [(t.name, t.scopes, t.expires_at, t.last_used_at) for t in listed] == [
            ("ci", frozenset({TokenScope.WRITE, TokenScope.DELETE}), None, None),
            ("laptop", frozenset({TokenScope.READ}), expires, None),
        ]
        assert listed[0].created_at.tzinfo is not None
        await store.revoke_access_token("alice", "ci")
        assert [t.name for t in await store.access_tokens("alice")] == ["laptop"]
        with pytest.raises(NotFound):
            await store.revoke_access_token("alice", "ci")
        assert await store.use_access_token("hash-2", datetime.now(UTC)) is None

    async def test_a_token_logs_its_user_in_until_it_expires(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        now = datetime.now(UTC).replace(microsecond=0)
        await store.create_access_token(
            "alice", "t", "hash-1", frozenset({TokenScope.WRITE}), now + timedelta(hours=1)
        )
        used = await store.use_access_token("hash-1", now)
        assert used is not None
        assert (used.user, used.token, used.actions) == ("alice", "t", frozenset({"pull", "push"}))
        assert await store.use_access_token("other", now) is None
        assert await store.use_access_token("hash-1", now + timedelta(hours=1)) is None
        await store.set_disabled("alice", True)
        assert await store.use_access_token("hash-1", now) is None

    async def test_last_use_is_written_at_most_once_a_minute(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_access_token("alice", "t", "hash-1", frozenset({TokenScope.READ}), None)
        start = datetime.now(UTC).replace(microsecond=0)
        await store.use_access_token("hash-1", start)
        await store.use_access_token("hash-1", start + timedelta(seconds=30))
        [token] = await store.access_tokens("alice")
        assert token.last_used_at == start
        await store.use_access_token("hash-1", start + timedelta(seconds=61))
        [token] = await store.access_tokens("alice")
        assert token.last_used_at == start + timedelta(seconds=61)

    # -- robots --------------------------------------------------------------------------------
    async def test_robots_belong_to_an_organization(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_organization("acme", owner="alice")
        robot = await store.create_robot("acme", "ci")
        assert robot.name == "acme+ci"
        with pytest.raises(AlreadyExists):
            await store.create_robot("acme", "ci")
        with pytest.raises(NotFound):
            await store.create_robot("nowhere", "ci")
        with pytest.raises(InvalidName):
            await store.create_robot("acme", "C I")
        credentials = await store.credentials("acme+ci")
        assert credentials is not None
        assert credentials.password_hash is None
        assert [r.name for r in await store.robots("acme")] == ["acme+ci"]
        principal = await store.principal("acme+ci")
        assert principal is not None
        assert principal.grants == ()
        assert principal.organizations == {}

    async def test_a_robot_is_granted_like_a_user(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_organization("acme", owner="alice")
        await store.create_robot("acme", "ci")
        await store.grant("acme/**", UserSubject("acme+ci"), Permission.WRITE)
        await store.set_member("acme", "acme+ci", Role.MEMBER)
        await store.create_team("acme", "builders")
        await store.add_team_member("acme", "builders", "acme+ci")
        await store.grant("shared/*", TeamSubject("acme", "builders"), Permission.READ)
        principal = await store.principal("acme+ci")
        assert principal is not None
        assert principal.grants == (("acme/**", Permission.WRITE), ("shared/*", Permission.READ))

    async def test_deleting_a_robot_takes_its_tokens_and_grants(self, store: IdentityStore) -> None:
        await store.create_user("alice", "h")
        await store.create_organization("acme", owner="alice")
        await store.create_organization("other", owner="alice")
        await store.create_robot("acme", "ci")
        await store.create_access_token("acme+ci", "default", "hash-r", frozenset(TokenScope), None)
        await store.grant("acme/**", UserSubject("acme+ci"), Permission.WRITE)
        with pytest.raises(NotFound):
            await store.delete_robot("other", "ci")
        await store.delete_robot("acme", "ci")
        assert await store.robots("acme") == []
        assert await store.get_user("acme+ci") is None
        assert await store.use_access_token("hash-r", datetime.now(UTC)) is None
        assert await store.grants() == []
        with pytest.raises(NotFound):
            await store.delete_robot("acme", "ci")
        # The name is free again.
        await store.create_robot("acme", "ci")

    # -- failed logins -------------------------------------------------------------------------
    async def test_login_failures_are_counted_in_windows(self, store: IdentityStore) -> None:
        start = datetime.now(UTC).replace(microsecond=0)
        window = timedelta(minutes=15)
        for i in range(3):
            await store.record_login_failure(["a", "b"], start + timedelta(seconds=i), window)
        await store.record_login_failure(["b"], start + timedelta(seconds=5), window)
        assert await store.login_failures(["a", "b", "c"]) == {"a": (start, 3), "b": (start, 4)}
        later = start + window
        await store.record_login_failure(["a"], later, window)
        assert await store.login_failures(["a"]) == {"a": (later, 1)}
        await store.clear_login_failures(["a"])
        assert await store.login_failures(["a", "b"]) == {"b": (start, 4)}
        assert await store.login_failures([]) == {}

    async def test_concurrent_failures_all_count(self, store: IdentityStore) -> None:
        now = datetime.now(UTC)
        await asyncio.gather(
            *(
                store.record_login_failure(["k"], now, timedelta(minutes=1))
                for _ in range(CONCURRENCY)
            )
        )
        assert (await store.login_failures(["k"]))["k"][1] == CONCURRENCY

    # -- audit ---------------------------------------------------------------------------------
    async def test_audit_events_are_kept_and_queried(self, store: IdentityStore) -> None:
        start = datetime.now(UTC).replace(microsecond=0)
        events = [
            AuditEvent(start, "login", "failure", actor="alice", client_address="10.0.0.1"),
            AuditEvent(start + timedelta(seconds=1), "login", "success", actor="alice"),
            AuditEvent(
                start + timedelta(seconds=2),
                "token.create",
                "success",
                actor="bob",
                detail="ci",
            ),
            AuditEvent(
                start + timedelta(seconds=3),
                "push",
                "success",
                actor="bob",
                repository="bob/app",
                digest="sha256:" + "0" * 64,
                tag="v1",
            ),
        ]
        for event in events:
            await store.add_audit_event(event)
        assert await store.audit_events() == events
        assert await store.audit_events(actor="alice") == events[:2]
        assert await store.audit_events(since=start + timedelta(seconds=2)) == events[2:]
        assert await store.audit_events(limit=1) == events[3:]
        assert await store.audit_events(actor="carol") == []
