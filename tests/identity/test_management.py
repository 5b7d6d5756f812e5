"""The service layer (``hub.management.Management``) and the store methods it added
(repository settings, teams, audit pages, the audit purge), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from auth.builtin_setup import FAST
from dockyard.errors import Conflict, Denied, NameUnknown, RequestInvalid, ResourceUnknown
from dockyard.hub.management import Management, cli_principal
from dockyard.hub.retention import purge_audit
from dockyard.identity.base import (
    AlreadyExists,
    AuditEvent,
    AuditFilter,
    IdentityStore,
    NotFound,
    Role,
    Visibility,
)
from dockyard.identity.sql import SqlIdentityStore
from dockyard.metadata.factory import open_store
from dockyard.metadata.migrate import upgrade
from dockyard.metadata.schema import metadata


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from metadata.test_postgres import fresh_database

    with fresh_database() as url:
        asyncio.run(upgrade(url))
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dockyard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[IdentityStore]:
    if database_url.startswith("sqlite"):
        content = await open_store(database_url)
    else:
        content = await open_store(database_url, migrate=False)
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        await content.database.transaction(
            Connection.exec_driver_sql, f"TRUNCATE {tables} RESTART IDENTITY"
        )
    yield SqlIdentityStore(content.database)
    await content.close()


async def _as(store: IdentityStore, name: str) -> Management:
    principal = await store.principal(name)
    assert principal is not None
    return Management(store, principal, passwords=FAST)


async def test_repository_settings(store: IdentityStore) -> None:
    made = await store.create_repository("alice/app", Visibility.PUBLIC, "hello")
    assert (made.name, made.visibility, made.description) == (
        "alice/app",
        Visibility.PUBLIC,
        "hello",
    )
    with pytest.raises(AlreadyExists):
        await store.create_repository("alice/app", Visibility.PRIVATE, None)
    # A push claims a repository that has settings without changing them.
    assert await store.claim_repository("alice/app", Visibility.PRIVATE) is Visibility.PUBLIC
    changed = await store.update_repository("alice/app", visibility=Visibility.PRIVATE)
    assert changed.description == "hello"
    assert changed.visibility is Visibility.PRIVATE
    cleared = await store.update_repository("alice/app", description="")
    assert cleared.description is None
    with pytest.raises(NotFound):
        await store.update_repository("alice/none", description="x")
    await store.create_repository("alice/b", Visibility.PRIVATE, None)
    await store.create_repository("zed", Visibility.PRIVATE, None)
    assert [r.name for r in await store.repositories()] == ["alice/app", "alice/b", "zed"]
    assert [r.name for r in await store.repositories(after="alice/app", limit=1)] == ["alice/b"]
    await store.create_user("bob", None)
    from dockyard.identity.base import Permission, UserSubject

    await store.grant("alice/app", UserSubject("bob"), Permission.READ)
    await store.grant("alice/*", UserSubject("bob"), Permission.READ)
    await store.forget_repository("alice/app")
    assert await store.repository("alice/app") is None
    assert [g.pattern for g in await store.grants()] == ["alice/*"]


async def test_audit_pages_and_purge(store: IdentityStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for n in range(6):
        await store.add_audit_event(
            AuditEvent(
                time=now - timedelta(days=10 - n),
                action="repository.create" if n % 2 else "login",
                outcome="success",
                actor="alice" if n < 4 else "bob",
                repository=f"r{n}",
            )
        )
    everything = await store.audit_page(AuditFilter(), limit=100)
    assert [r.event.repository for r in everything] == [f"r{n}" for n in range(6)]
    first = await store.audit_page(AuditFilter(actor="alice"), limit=2)
    rest = await store.audit_page(AuditFilter(actor="alice"), after=first[-1].id, limit=2)
    assert [r.event.repository for r in first + rest] == ["r0", "r1", "r2", "r3"]
    created = await store.audit_page(AuditFilter(action="repository.create", actor="bob"))
    assert [r.event.repository for r in created] == ["r5"]
    window = AuditFilter(since=now - timedelta(days=9), until=now - timedelta(days=7))
    assert [r.event.repository for r in await store.audit_page(window)] == ["r1", "r2"]
    await store.record_login_failure(["account:x@-"], now - timedelta(days=8), timedelta(hours=1))
    await store.record_login_failure(["account:y@-"], now, timedelta(hours=1))
    # Older than 7 days: r0..r2 and the old failure counter.
    purged = await purge_audit(store, 7 * 86400.0, clock=lambda: now)
    assert purged == 3
    left = await store.audit_page(AuditFilter())
    assert [r.event.repository for r in left] == ["r3", "r4", "r5"]
    assert set(await store.login_failures(["account:x@-", "account:y@-"])) == {"account:y@-"}


async def test_management_rules(store: IdentityStore) -> None:
    admin = Management(store, cli_principal(), passwords=FAST)
    for name in ("alice", "bob", "eve"):
        await admin.create_user(name, "pw")
    await admin.create_organization("acme", owner="alice")
    alice = await _as(store, "alice")
    bob = await _as(store, "bob")
    with pytest.raises(Denied):
        await bob.create_organization("mine", owner="alice")
    await alice.set_member("acme", "bob", "member")
    # The last owner stays; a second owner lets the first step down.
    with pytest.raises(Denied):
        await alice.set_member("acme", "alice", "member")
    await alice.set_member("acme", "bob", "owner")
    await alice.set_member("acme", "alice", "member")
    assert {m.user: m.role for m in await alice.members("acme")} == {
        "alice": Role.MEMBER.value,
        "bob": Role.OWNER.value,
    }
    # Listing pages skip what the caller may not see and say where to go on.
    bob = await _as(store, "bob")
    for n in range(5):
        await bob.create_repository(f"acme/r{n}", visibility="public" if n % 2 else "private")
    eve = await _as(store, "eve")
    page = await eve.list_repositories(limit=1)
    assert [r.name for r in page.repositories] == ["acme/r1"]
    assert page.next == "acme/r1"
    page = await eve.list_repositories(after=page.next, limit=5)
    assert [r.name for r in page.repositories] == ["acme/r3"]
    assert page.next is None
    assert len((await bob.list_repositories(namespace="acme")).repositories) == 5
    assert (await eve.list_repositories(namespace="nobody")).repositories == []
    with pytest.raises(NameUnknown):
        await eve.get_repository("acme/r0")
    with pytest.raises(Denied):
        await eve.update_repository("acme/r1", description="mine now")
    with pytest.raises(RequestInvalid):
        await eve.create_token("t", ["read"], expires="forever")
    with pytest.raises(Conflict):
        await admin.create_user("acme", "pw")
    with pytest.raises(ResourceUnknown):
        await admin.update_user("ghost", disabled=True)
    with pytest.raises(Denied):
        await eve.export_audit(AuditFilter()).__anext__()
    exported = [e async for e in admin.export_audit(AuditFilter(action="repository.create"))]
    assert [e.repository for e in exported] == [f"acme/r{n}" for n in range(5)]
