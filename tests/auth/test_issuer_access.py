"""The token server without HTTP, with access tokens and the limit on failed logins: what a
token's scopes grant, expiry and revocation, failures counted per (account, address) and per
address in windows of a clock the test moves, and the audit log of every attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.auth.base import Access
from dockyard.auth.issuer import BadCredentials, TokenIssuer, TooManyFailures
from dockyard.identity.base import TokenScope
from dockyard.identity.limits import LoginLimiter, LoginLimits
from dockyard.identity.tokens import new_secret, secret_hash

from .builtin_setup import Builtin, builtin

START = datetime(2030, 1, 1, tzinfo=UTC)
APP = "alice/app"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


@dataclass
class Server:
    made: Builtin
    issuer: TokenIssuer
    clock: Clock

    async def token(
        self, name: str, scopes: set[TokenScope], expires: datetime | None = None
    ) -> str:
        secret = new_secret()
        await self.made.store.create_access_token(
            "alice", name, secret_hash(secret), frozenset(scopes), expires
        )
        return secret

    async def granted(self, password: str, *actions: str) -> set[str]:
        login = await self.issuer.authenticate("alice", password, "10.0.0.1")
        issued = await self.issuer.issue(
            login.subject, [Access.repository(APP, *actions)], cap=login.cap, offline=True
        )
        if login.cap is not None:
            assert issued.refresh_token is None
        return set(issued.access[0].actions)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with builtin(tmp_path) as made:
        await made.add_user("alice", "wonderland")
        await made.add_user("bob", "builder")
        clock = Clock()
        base = made.issuer
        issuer = TokenIssuer(
            issuer=base.issuer,
            service=base.service,
            keys=base.keys,
            lifetime=base.lifetime,
            store=made.store,
            authority=base.authority,
            passwords=base.passwords,
            limiter=LoginLimiter(
                made.store, LoginLimits(per_account=3, per_address=5, window=600), clock=clock
            ),
            clock=clock.seconds,
        )
        yield Server(made, issuer, clock)


# -- access tokens --------------------------------------------------------------------------------


async def test_scopes_cap_the_actions(server: Server) -> None:
    everything = ("pull", "push", "delete", "*")
    assert await server.granted("wonderland", *everything) == {"pull", "push", "delete", "*"}
    read = await server.token("r", {TokenScope.READ})
    write = await server.token("w", {TokenScope.WRITE})
    delete = await server.token("d", {TokenScope.DELETE})
    assert await server.granted(read, *everything) == {"pull"}
    assert await server.granted(write, *everything) == {"pull", "push"}
    assert await server.granted(delete, *everything) == {"pull", "push", "delete"}


async def test_a_capped_push_does_not_create_the_repository(server: Server) -> None:
    read = await server.token("r", {TokenScope.READ})
    assert await server.granted(read, "push") == set()
    assert await server.made.store.visibilities([APP]) == {}


async def test_expired_revoked_and_foreign_tokens_are_refused(server: Server) -> None:
    soon = await server.token("soon", {TokenScope.READ}, START + timedelta(hours=1))
    assert await server.granted(soon, "pull") == {"pull"}
    server.clock.now = START + timedelta(hours=1)
    with pytest.raises(BadCredentials):
        await server.issuer.authenticate("alice", soon, "10.0.0.1")
    kept = await server.token("kept", {TokenScope.READ})
    with pytest.raises(BadCredentials):
        await server.issuer.authenticate("bob", kept, "10.0.0.1")
    await server.made.store.revoke_access_token("alice", "kept")
    with pytest.raises(BadCredentials):
        await server.issuer.authenticate("alice", kept, "10.0.0.1")
    # A password that merely looks like a token is still a password.
    await server.made.store.set_password("bob", server.issuer.passwords.hash("dyt_bob"))
    assert (await server.issuer.authenticate("bob", "dyt_bob")).cap is None


async def test_a_token_use_is_recorded(server: Server) -> None:
    read = await server.token("r", {TokenScope.READ})
    await server.issuer.authenticate("alice", read, "10.0.0.1")
    [token] = await server.made.store.access_tokens("alice")
    assert token.last_used_at == START


# -- failed logins --------------------------------------------------------------------------------


async def _fail(server: Server, user: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(BadCredentials):
            await server.issuer.authenticate(user, "guess", address)


async def test_an_account_is_limited_from_one_address_only(server: Server) -> None:
    await _fail(server, "alice", "10.6.6.6", 3)
    with pytest.raises(TooManyFailures) as limited:
        await server.issuer.authenticate("alice", "wonderland", "10.6.6.6")
    assert limited.value.retry_after == 600
    assert (await server.issuer.authenticate("alice", "wonderland", "10.0.0.1")).subject == "alice"
    server.clock.now = START + timedelta(seconds=599)
    with pytest.raises(TooManyFailures) as limited:
        await server.issuer.authenticate("alice", "wonderland", "10.6.6.6")
    assert limited.value.retry_after == 1
    server.clock.now = START + timedelta(seconds=600)
    assert (await server.issuer.authenticate("alice", "wonderland", "10.6.6.6")).subject == "alice"


async def test_a_success_clears_the_accounts_count(server: Server) -> None:
    await _fail(server, "alice", "10.0.0.1", 2)
    await server.issuer.authenticate("alice", "wonderland", "10.0.0.1")
    await _fail(server, "alice", "10.0.0.1", 2)
    assert (await server.issuer.authenticate("alice", "wonderland", "10.0.0.1")).subject == "alice"


async def test_an_address_is_limited_for_every_account(server: Server) -> None:
    await _fail(server, "alice", "10.6.6.6", 2)
    await _fail(server, "bob", "10.6.6.6", 2)
    await _fail(server, "nobody", "10.6.6.6", 1)
    with pytest.raises(TooManyFailures):
        await server.issuer.authenticate("carol", "anything", "10.6.6.6")
    assert (await server.issuer.authenticate("bob", "builder", "10.0.0.2")).subject == "bob"


async def test_every_attempt_is_audited(server: Server) -> None:
    read = await server.token("laptop", {TokenScope.READ})
    await _fail(server, "alice", "10.6.6.6", 3)
    with pytest.raises(TooManyFailures):
        await server.issuer.authenticate("alice", "wonderland", "10.6.6.6")
    await server.issuer.authenticate("alice", "wonderland", "10.0.0.1")
    await server.issuer.authenticate("alice", read, "10.0.0.1")
    events = await server.made.store.audit_events(actor="alice")
    assert [(e.client_address, e.action, e.outcome, e.detail) for e in events] == [
        ("10.6.6.6", "login", "failure", None),
        ("10.6.6.6", "login", "failure", None),
        ("10.6.6.6", "login", "failure", None),
        ("10.6.6.6", "login", "throttled", None),
        ("10.0.0.1", "login", "success", "password"),
        ("10.0.0.1", "login", "success", "token laptop"),
    ]
    assert all(e.time == START for e in events)


async def test_refused_writes_of_signed_in_users_are_audited(server: Server) -> None:
    read = await server.token("laptop", {TokenScope.READ})
    issuer = server.issuer
    # The owner gets what she asks for: nothing to audit.
    await issuer.issue("alice", [Access.repository(APP, "pull", "push")], address="10.0.0.1")
    # A read-only token asks to write; bob asks to write and delete in alice's namespace.
    login = await issuer.authenticate("alice", read, "10.0.0.1")
    await issuer.issue(
        login.subject, [Access.repository(APP, "pull", "push")], cap=login.cap, address="10.0.0.1"
    )
    await issuer.issue(
        "bob",
        [Access.repository(APP, "pull", "push", "delete"), Access.repository("bob/x", "push")],
        address="10.0.0.2",
    )
    # Anonymous refusals are not written (anyone could fill the log with them), nor pulls.
    await issuer.issue(None, [Access.repository(APP, "pull", "push")], address="10.9.9.9")
    await issuer.issue("bob", [Access.repository("alice/private", "pull")], address="10.0.0.2")
    events = [e for e in await server.made.store.audit_events() if e.outcome == "denied"]
    assert [(e.actor, e.client_address, e.action, e.repository) for e in events] == [
        ("alice", "10.0.0.1", "push", APP),
        ("bob", "10.0.0.2", "delete", APP),
        ("bob", "10.0.0.2", "push", APP),
    ]
